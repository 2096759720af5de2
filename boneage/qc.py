"""Image quality control: polarity and "is this a hand at all".

Both checks work on the decoded float image (rows, cols) in [0, 1] and cost
a few milliseconds; they are heuristics tuned on synthetic films and checked
on the real radiographs in shared/data/real-hands.

* Polarity: radiographs have a dark background (no attenuation) around a
  brighter body part; an inverted film (MONOCHROME1 shown raw, or a negative)
  has a bright frame around darker anatomy.
* Hand: a PA hand film shows several separate fingers: enough rows of the
  upper part cross three or more finger-wide runs of tissue or bone, and the
  foreground is made of long, vertically coherent structures. Blank frames,
  chest films, text pages, single long bones and noise do not pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boneage.preprocess import blur_image, border_level

#: QC works on the image subsampled to about this many pixels on its longer side.
QC_SIDE = 256
#: Films smaller than this (pixels, shorter side) are rejected as ``too_small``.
MIN_SIDE = 100
#: Share of image rows that must look like separate fingers for a hand verdict.
MIN_FINGER_ROWS = 0.06
#: Vertical coherence of the foreground below which a film is noise, not anatomy.
MIN_COHERENCE = 0.76
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


def row_runs(mask: np.ndarray, min_len: int, max_len: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a 2-D boolean mask (vectorised over rows): the number of runs of
    True at least ``min_len`` long, the number of all runs, and whether a run is
    longer than ``max_len``."""
    rows = mask.shape[0]
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    start_r, start_c = np.nonzero(edges == 1)
    _, end_c = np.nonzero(edges == -1)  # row-major order pairs each start with its end
    lengths = end_c - start_c
    counts = np.bincount(start_r[lengths >= min_len], minlength=rows)
    every = np.bincount(start_r, minlength=rows)
    wide = np.bincount(start_r[lengths > max_len], minlength=rows) > 0
    return counts, every, wide


def finger_rows(small: np.ndarray) -> tuple[int, float]:
    """Count finger-like rows in the upper 60 % of a small, smoothed, upright image.

    A row is finger-like when the tissue there has no body-wide run (a chest,
    a page, a palm), it crosses 3 to 12 finger-wide runs of tissue or of bone,
    and few other specks (noise and texture cross dozens of short runs).
    Returns the median run count over those rows and their share of all rows.
    """
    rows, cols = small.shape
    tissue = small > otsu_threshold(small)
    fg = small[tissue]
    bone = small > (otsu_threshold(fg) if fg.size > 16 else 1.0)
    min_len, wide_len = max(3, cols // 60), cols // 3
    n_tissue, specks, wide = row_runs(tissue, min_len, wide_len)
    n_bone, _, _ = row_runs(bone & tissue, min_len, wide_len)
    band = slice(int(rows * 0.05), int(rows * 0.6))
    n = np.maximum(n_tissue, n_bone)[band]
    ok = (n >= 3) & (n <= 12) & ~wide[band] & (specks[band] <= 2 * n + 4)
    if not ok.any():
        return 0, 0.0
    return int(np.median(n[ok])), float(ok.sum()) / rows


def coherence(small: np.ndarray) -> float:
    """Share of foreground pixels still foreground a little further down the image.

    Anatomy is made of long structures (fingers, bones, forearm): ~0.9 and more.
    Noise and texture decorrelate within a few rows: ~0.5. Two foregrounds are
    scored, Otsu's and a lower one halfway to the background (on faint infant
    films Otsu's threshold picks out the short bones, not the soft tissue).
    """
    otsu = otsu_threshold(small)
    d = max(4, small.shape[0] // 60)
    best = 0.0
    for threshold in (otsu, (otsu + border_level(small)) / 2):
        mask = small > threshold
        above = mask[:-d]
        best = max(best, float((above & mask[d:]).sum() / max(above.sum(), 1)))
    return best


def working_image(img: np.ndarray) -> np.ndarray:
    """The image QC looks at: subsampled to about :data:`QC_SIDE` px and smoothed."""
    step = max(1, max(img.shape) // QC_SIDE)
    return blur_image(img[::step, ::step], 1.5)


def check(img: np.ndarray) -> QCResult:
    """Run polarity and hand checks on a decoded image (float (rows, cols) in [0, 1])."""
    if min(img.shape) < MIN_SIDE:
        return QCResult(False, False, "too_small", 0, 0.0)
    small = working_image(img)
    lo, hi = np.percentile(small, [1, 99])
    contrast = float(hi - lo)  # after smoothing: noise alone is no contrast
    if contrast < MIN_CONTRAST:
        return QCResult(False, False, "no_hand", 0, contrast)
    inverted = is_inverted(small)
    upright = 1.0 - small if inverted else small
    fingers, share = finger_rows(upright)
    is_hand = share >= MIN_FINGER_ROWS and coherence(upright) >= MIN_COHERENCE
    return QCResult(inverted, is_hand, None if is_hand else "no_hand", fingers, contrast)
