"""DICOM folders: one row per file, identifying fields left behind.

Config::

    source: dicom
    folder: /data/pacs/hands       # searched recursively for DICOM files
    id_field: StudyInstanceUID     # or AccessionNumber, PatientID, SOPInstanceUID
    pseudonymize: true             # replace the id by a salted hash (default true)
    salt: "site-secret"            # keeps pseudonyms stable and unguessable
    labels: {table: ba.xlsx, columns: {id: Accession, boneage: BA}, label_unit: years}

Only the configured id (or its pseudonym), sex, the age derived from
PatientAge or the birth and study dates, BodyPartExamined and Modality (for
quality control) are kept. PatientName,
PatientBirthDate, AccessionNumber and PatientID never leave this module
unless one of them is the configured id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boneage.labels import parse_label
from boneage.sources import finish, parse_sex
from boneage.sources.spreadsheet import UNITS, read_table

#: Ends every encapsulated (compressed) pixel data element: the sequence delimiter.
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_AGE = re.compile(r"^(\d{1,3})([DWMY])$")
_PER_MONTH = {"D": 30.4375, "W": 30.4375 / 7, "M": 1.0, "Y": 1 / 12}


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
    values = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
              * int(ds.get("NumberOfFrames", 1) or 1))
    expected = -(-values * bits // 8)
    element_header = 8 if syntax is not None and syntax.is_implicit_VR else 12
    return ds, size < start + element_header + expected


def age_months(ds) -> float:
    """Chronological age in months from PatientAge (``010Y``) or birth and study dates."""
    m = _AGE.match(str(getattr(ds, "PatientAge", "") or "").strip().upper())
    if m:
        return round(int(m.group(1)) / _PER_MONTH[m.group(2)], 2)
    try:
        birth = dt.datetime.strptime(str(ds.PatientBirthDate), "%Y%m%d")
        study = dt.datetime.strptime(str(ds.StudyDate), "%Y%m%d")
    except (AttributeError, ValueError):
        return float("nan")
    return round((study - birth).days / 30.4375, 2)


def pseudonym(value: str, salt: str) -> str:
    """A stable, salted, non-reversible study pseudonym."""
    return "S" + hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()[:16]


def read_dicom_folder(spec: dict[str, Any]) -> pd.DataFrame:
    """One source row per DICOM file under ``spec["folder"]`` (headers only, no pixels)."""
    root = Path(spec["folder"])
    id_field = spec.get("id_field", "StudyInstanceUID")
    salt = str(spec.get("salt", ""))
    hide = spec.get("pseudonymize", True)
    records = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        record: dict[str, Any] = {"path": rel, "error": None}
        if not is_dicom(path):
            if path.suffix.lower() != ".dcm":
                continue  # not part of the export (README, DICOMDIR index, ...)
            record.update(id=pseudonym(rel, salt), key=None, error="unreadable_image")
        else:
            try:
                ds, truncated = read_header(path)
                key = str(getattr(ds, id_field, "") or "")
                record.update(key=key or None, sex=parse_sex(getattr(ds, "PatientSex", "")),
                              chrono_age=age_months(ds),
                              body_part=str(ds.get("BodyPartExamined", "") or ""),
                              modality=str(ds.get("Modality", "") or ""),
                              id=(pseudonym(key, salt) if hide else key) if key else
                              pseudonym(rel, salt))
                if truncated:
                    record["error"] = "truncated"  # before duplicate_id: the file is broken
                elif not key:
                    record["error"] = "missing_id"
            except Exception:  # noqa: BLE001 - any header pydicom cannot parse
                record.update(id=pseudonym(rel, salt), key=None, error="unreadable_image")
        records.append(record)
    frame = pd.DataFrame(records, columns=["path", "error", "id", "key", "sex", "chrono_age",
                                           "body_part", "modality"]).fillna(
        {"body_part": "", "modality": ""})
    frame["label_status"] = "unlabelled"
    frame["boneage"] = np.nan
    frame["label_raw"] = ""
    if spec.get("labels"):
        _join_labels(frame, spec["labels"])
    out = finish(frame.drop(columns=["key"]))
    out["error"] = frame["error"].values
    return out


def _join_labels(frame: pd.DataFrame, labels: dict[str, Any]) -> None:
    """Attach bone ages from a label sheet keyed by the DICOM id field (in place)."""
    cols = labels["columns"]
    table = read_table(labels["table"], labels.get("sheet"))
    cells = table.set_index(table[cols["id"]].str.strip())[cols["boneage"]]
    cells = cells[~cells.index.duplicated()]
    scale = UNITS[labels.get("label_unit", "years")]
    parsed = [parse_label(cells.get(k, "")) if k else parse_label(None) for k in frame["key"]]
    frame["boneage"] = [p.value * scale for p in parsed]
    frame["label_raw"] = [p.raw for p in parsed]
    frame["label_status"] = [p.status for p in parsed]


def _broken(path: str | os.PathLike[str], exc: Exception):
    """The DecodeError for a DICOM file pydicom failed on: ``truncated`` or ``unreadable_image``."""
    from boneage.preprocess import DecodeError

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
    :class:`boneage.preprocess.DecodeError` (``unsupported_compression``,
    ``decompression_bomb``, ``unreadable_image``).
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    from boneage.preprocess import DecodeError

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
