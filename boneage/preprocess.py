"""Decode radiographs and bring them to the model's square input.

Pipeline for one image: decode (8/16-bit, palette, RGB -> grey, float in
[0, 1]) -> polarity to white bone on black (see :mod:`boneage.qc`) -> pad
to a square with the background level (never squash the aspect ratio) ->
resize -> contrast stretch between robust percentiles -> uint8.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

#: Refuse images above this many pixels (decompression bombs); ~ 2.5x a large CR plate.
MAX_PIXELS = 40_000_000


class DecodeError(ValueError):
    """An image that cannot be used; ``reason`` is the manifest's rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """Read an image file as float32 grey levels in [0, 1], shape (rows, cols).

    With ``max_side``, the image is shrunk by an integer factor (box filter)
    so its longer side is at most about twice ``max_side``: ingest then works
    on a few hundred thousand pixels instead of millions.

    DICOM files are recognised by their preamble (see
    :func:`boneage.sources.dicom.decode_dicom`). Raises :class:`DecodeError`
    with reason ``empty_file``, ``decompression_bomb``, ``unsupported_compression``
    or ``unreadable_image``.
    """
    if os.path.getsize(path) == 0:
        raise DecodeError("empty_file", "file has 0 bytes")
    from boneage.sources.dicom import decode_dicom, is_dicom

    if is_dicom(path):
        img = decode_dicom(path, MAX_PIXELS)
        return shrink(img, _factor(img.shape, max_side))
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise DecodeError("decompression_bomb", f"{im.width}x{im.height} pixels")
            im.load()
            factor = _factor((im.height, im.width), max_side)
            if factor > 1 and im.mode == "L":
                return to_grey(im.reduce(factor))  # C box filter, before float conversion
            return shrink(to_grey(im), factor)
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError("decompression_bomb", str(exc)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DecodeError("unreadable_image", f"{type(exc).__name__}: {exc}") from exc


def _factor(shape: tuple[int, ...], max_side: int | None) -> int:
    return max(1, max(shape) // max_side) if max_side else 1


def shrink(img: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downsampling of a 2-D float array by an integer ``factor``."""
    if factor <= 1:
        return img
    return np.asarray(Image.fromarray(img.astype(np.float32, copy=False)).reduce(factor))


def to_grey(im: Image.Image) -> np.ndarray:
    """Convert any PIL mode to float32 grey in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if arr.max() > 4095 else 4095.0 if arr.max() > 255 else 255.0
        return np.clip(arr / top, 0.0, 1.0)
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if im.mode not in ("L", "1"):
        im = im.convert("L")  # palette, RGB, LA, ...
    return np.asarray(im, dtype=np.float32) / 255.0


def pad_square(img: np.ndarray, fill: float) -> np.ndarray:
    """Pad (rows, cols) to a centred square with ``fill``; content is not cropped or squashed."""
    rows, cols = img.shape
    side = max(rows, cols)
    out = np.full((side, side), fill, dtype=img.dtype)
    r0, c0 = (side - rows) // 2, (side - cols) // 2
    out[r0:r0 + rows, c0:c0 + cols] = img
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
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)],
                        mode="edge")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * (padded[i:i + n] if axis == 0 else padded[:, i:i + n])
        out = acc
    return out


def border_level(img: np.ndarray, frac: float = 0.04) -> float:
    """Median grey level of the outer frame (the background on a radiograph)."""
    rows, cols = img.shape
    br, bc = max(1, int(rows * frac)), max(1, int(cols * frac))
    frame = np.concatenate([img[:br].ravel(), img[-br:].ravel(), img[:, :bc].ravel(),
                            img[:, -bc:].ravel()])
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
    fitted = np.asarray(im.resize(shape[::-1], Image.Resampling.BILINEAR, reducing_gap=2.0),
                        dtype=np.float32)
    return stretch(pad_square(fitted, border_level(img)))
