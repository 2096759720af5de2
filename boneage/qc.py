"""Image quality control: polarity and "is this a hand at all".

Both checks work on the decoded float image (rows, cols) in [0, 1] and cost
a few milliseconds; they are heuristics tuned on synthetic films and checked
on the real radiographs in shared/data/real-hands.

* Polarity: radiographs have a dark background (no attenuation) around a
  brighter body part; an inverted film (MONOCHROME1 shown raw, or a negative)
  has a bright frame around darker anatomy.
* Hand: a PA hand film shows several separate fingers: some row of the upper
  part of the foreground crosses at least three separate runs of tissue or
  bone. Blank frames, chest films, text pages and single long bones do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boneage.preprocess import blur_image, border_level

#: Share of image rows that must look like separate fingers for a hand verdict.
MIN_FINGER_ROWS = 0.06
#: Grey-level spread (1st-99th percentile, smoothed) below which a film is blank.
MIN_CONTRAST = 0.1


@dataclass(frozen=True)
class QCResult:
    """Verdict for one image: ``reason`` is set when it is rejected."""

    inverted: bool
    is_hand: bool
    reason: str | None
    fingers: int
    contrast: float


def is_inverted(img: np.ndarray) -> bool:
    """True when the frame is brighter than the centre (white background)."""
    rows, cols = img.shape
    centre = img[rows // 4: 3 * rows // 4, cols // 4: 3 * cols // 4]
    return border_level(img) > float(np.mean(centre))


def otsu_threshold(img: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of a float image in [0, 1]."""
    hist, edges = np.histogram(img, bins=bins, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    return float(edges[int(np.argmax(between)) + 1])


def count_runs(mask_row: np.ndarray, min_len: int) -> int:
    """Number of runs of True at least ``min_len`` long in a 1-D boolean array."""
    padded = np.concatenate([[False], mask_row, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    lengths = edges[1::2] - edges[::2]
    return int(np.sum(lengths >= min_len))


def finger_rows(img: np.ndarray, step: int = 4) -> tuple[int, float]:
    """Count finger-like rows in the upper 60 % of a (smoothed, subsampled) image.

    A row is finger-like when the tissue there has no body-wide run (a chest,
    a page, a palm) and it crosses 3 to 12 separate runs of tissue or of bone.
    Returns the median run count over those rows and their share of all rows.
    """
    small = blur_image(img[::step, ::step], 1.0)
    rows, cols = small.shape
    tissue_thr = otsu_threshold(small)
    tissue = small > tissue_thr
    fg = small[tissue]
    bone = small > (otsu_threshold(fg) if fg.size > 16 else 1.0)
    min_len, wide = max(2, cols // 100), cols // 3
    counts = []
    for r in range(int(rows * 0.05), int(rows * 0.6)):
        if _has_wide_run(tissue[r], wide):
            continue
        n = max(count_runs(tissue[r], min_len), count_runs(bone[r] & tissue[r], min_len))
        if 3 <= n <= 12:
            counts.append(n)
    if not counts:
        return 0, 0.0
    return int(np.median(counts)), len(counts) / rows


def _has_wide_run(row: np.ndarray, max_len: int) -> bool:
    """True when the row holds a run wider than a finger could be (a body, a page)."""
    padded = np.concatenate([[False], row, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return bool(np.any(edges[1::2] - edges[::2] > max_len))


def check(img: np.ndarray) -> QCResult:
    """Run polarity and hand checks on a decoded image (float (rows, cols) in [0, 1])."""
    lo, hi = np.percentile(blur_image(img[::4, ::4], 2.0), [1, 99])
    contrast = float(hi - lo)  # after smoothing: noise alone is no contrast
    if contrast < MIN_CONTRAST:
        return QCResult(False, False, "no_hand", 0, contrast)
    inverted = is_inverted(img)
    upright = 1.0 - img if inverted else img
    fingers, share = finger_rows(upright)
    is_hand = share >= MIN_FINGER_ROWS
    return QCResult(inverted, is_hand, None if is_hand else "no_hand", fingers, contrast)
