"""Bring decoded radiographs to the model's square input.

Pipeline for one image: decode (:mod:`boneage.imageio`: 8/16-bit, palette,
RGB -> grey, DICOM, float in [0, 1]) -> polarity to white bone on black (see
:mod:`boneage.qc`) -> pad to a square with the background level (never
squash the aspect ratio) -> resize -> contrast stretch between robust
percentiles -> uint8.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def pad_square(img: np.ndarray, fill: float) -> np.ndarray:
    """Pad (rows, cols) to a centred square with ``fill``; content is not cropped or squashed."""
    rows, cols = img.shape
    side = max(rows, cols)
    out = np.full((side, side), fill, dtype=img.dtype)
    r0, c0 = (side - rows) // 2, (side - cols) // 2
    out[r0 : r0 + rows, c0 : c0 + cols] = img
    return out


def stretch(img: np.ndarray, lo_pct: float = 0.5, hi_pct: float = 99.5) -> np.ndarray:
    """Map robust percentiles to [0, 255] as uint8 (exposure normalisation)."""
    lo, hi = np.percentile(img, [lo_pct, hi_pct])
    scaled = (img - lo) / max(hi - lo, 1e-6)
    return np.clip(scaled * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blur_image(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array (edges replicated)."""
    if sigma < 0.3:
        return image
    radius = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = image
    for axis in (0, 1):
        padded = np.pad(
            out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge"
        )
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * (padded[i : i + n] if axis == 0 else padded[:, i : i + n])
        out = acc
    return out


def border_level(img: np.ndarray, frac: float = 0.04) -> float:
    """Median grey level of the outer frame (the background on a radiograph)."""
    rows, cols = img.shape
    br, bc = max(1, int(rows * frac)), max(1, int(cols * frac))
    frame = np.concatenate(
        [img[:br].ravel(), img[-br:].ravel(), img[:, :bc].ravel(), img[:, -bc:].ravel()]
    )
    return float(np.median(frame))


def prepare(img: np.ndarray, size: int) -> np.ndarray:
    """Fit, pad and stretch a polarity-corrected image to uint8 (size, size).

    The longer side is resized to ``size`` keeping the aspect ratio; the
    shorter is padded with the background level (never squashed).
    """
    rows, cols = img.shape
    scale = size / max(rows, cols)
    shape = (max(1, round(rows * scale)), max(1, round(cols * scale)))
    im = Image.fromarray(img.astype(np.float32, copy=False))  # mode "F"
    fitted = np.asarray(
        im.resize(shape[::-1], Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.float32
    )
    return stretch(pad_square(fitted, border_level(img)))
