"""Reading radiographs: one home for decoding PNG, JPEG, TIFF and DICOM pixels.

Everything that opens an image file goes through :func:`decode` (ingest,
QC thumbnails in the report, one-study estimates); the DICOM sources read
headers with :func:`read_header`. A file that cannot be used raises
:class:`DecodeError` with the manifest's rejection reason.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

#: Ends every encapsulated (compressed) pixel data element: the sequence delimiter.
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

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
    :func:`decode_dicom`). Raises :class:`DecodeError`
    with reason ``empty_file``, ``decompression_bomb``, ``unsupported_compression``
    or ``unreadable_image``.
    """
    if os.path.getsize(path) == 0:
        raise DecodeError("empty_file", "file has 0 bytes")
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
    grey = np.array(im, dtype=np.float32)  # a new array: scaled in place
    grey /= 255.0
    return grey


def is_dicom(path: str | os.PathLike[str]) -> bool:
    """True for a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_header(path: str | os.PathLike[str]):
    """The header of a DICOM file (no pixels) and whether its pixel data is cut short.

    Uncompressed pixel data must be as long as rows x columns x samples x
    bytes per sample x frames; compressed pixel data must end with its
    sequence delimiter. A file cut off by a failed transfer fails either test.
    """
    import pydicom

    with open(path, "rb") as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
        start = fh.tell()  # pydicom stops at the start of the pixel data element
        size = os.fstat(fh.fileno()).st_size
        if "Rows" not in ds:
            return ds, False
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_compressed:
            fh.seek(max(size - len(_SEQUENCE_END), 0))
            return ds, fh.read() != _SEQUENCE_END
    bits = int(ds.get("BitsAllocated", 8) or 8)
    values = (
        int(ds.Rows)
        * int(ds.Columns)
        * int(ds.get("SamplesPerPixel", 1) or 1)
        * int(ds.get("NumberOfFrames", 1) or 1)
    )
    expected = -(-values * bits // 8)
    element_header = 8 if syntax is not None and syntax.is_implicit_VR else 12
    return ds, size < start + element_header + expected


def _broken(path: str | os.PathLike[str], exc: Exception):
    """The DecodeError for a DICOM file pydicom failed on: ``truncated`` or ``unreadable_image``."""
    try:
        cut_short = read_header(path)[1]
    except Exception:  # noqa: BLE001 - not even the header reads
        cut_short = False
    if cut_short:
        return DecodeError("truncated", "pixel data cut short")
    return DecodeError("unreadable_image", f"{type(exc).__name__}: {exc}")


def decode_dicom(path: str | os.PathLike[str], max_pixels: int) -> np.ndarray:
    """Pixels of a DICOM file as float32 grey in [0, 1], white bone on black.

    Applies the modality LUT (rescale slope/intercept), then the VOI LUT or
    window, then inverts MONOCHROME1. Raises
    :class:`DecodeError` (``unsupported_compression``,
    ``decompression_bomb``, ``unreadable_image``).
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
        rows, cols = int(ds.Rows), int(ds.Columns)
    except Exception as exc:  # noqa: BLE001
        raise _broken(path, exc) from exc
    if rows * cols > max_pixels:
        raise DecodeError("decompression_bomb", f"{cols}x{rows} pixels")
    syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
    try:
        arr = ds.pixel_array
    except (NotImplementedError, RuntimeError, ImportError) as exc:
        name = getattr(syntax, "name", str(syntax))
        raise DecodeError("unsupported_compression", f"no decoder for {name}") from exc
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
        raise _broken(path, exc) from exc
    if arr.ndim == 3 and int(getattr(ds, "SamplesPerPixel", 1)) == 1:
        arr = arr[0]  # multi-frame: first frame
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1)
    arr = apply_modality_lut(arr, ds).astype(np.float64)
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        arr = apply_voi_lut(arr, ds, index=0).astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    img = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        img = 1.0 - img
    return img.astype(np.float32)
