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
from scipy import ndimage as ndi


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
    """Separable Gaussian blur (radius 3 sigma) of a 2-D float array, edges replicated."""
    if sigma < 0.3:
        return image
    radius = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(image.dtype)
    rows = ndi.correlate1d(image, k, axis=0, mode="nearest")
    return ndi.correlate1d(rows, k, axis=1, mode="nearest")


def border_level(img: np.ndarray, frac: float = 0.04, samples: int = 5_000) -> float:
    """Median grey level of the outer frame (the background on a radiograph).

    A frame of more than 4 x ``samples`` pixels (38,400 at 600 x 400, QC's
    images have under 20,000) is read on a regular grid of rows and columns
    (every 2nd, 3rd, ...): its median is the background's level all the same.
    """
    rows, cols = img.shape
    br, bc = max(1, int(rows * frac)), max(1, int(cols * frac))
    step = max(1, int(np.sqrt(2 * (br * cols + bc * rows) / samples)))
    frame = np.concatenate(
        [
            img[:br:step, ::step].ravel(),
            img[rows - br :: step, ::step].ravel(),
            img[::step, :bc:step].ravel(),
            img[::step, cols - bc :: step].ravel(),
        ]
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
