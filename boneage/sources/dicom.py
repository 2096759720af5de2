"""DICOM folders: one row per file, identifying fields left behind.

Config::

    source: dicom
    folder: /data/pacs/hands       # searched recursively for DICOM files
    id_field: StudyInstanceUID     # or AccessionNumber, PatientID, SOPInstanceUID
    pseudonymize: true             # replace the id by a keyed hash (default true)
    salt_env: BONEAGE_SALT         # where the site secret is kept (or salt_file: PATH)
    labels: {table: ba.xlsx, columns: {id: Accession, boneage: BA}, label_unit: years}

Only the configured id (or its pseudonym), sex, the age derived from
PatientAge or the birth and study dates, BodyPartExamined and Modality (for
quality control) are kept. PatientName,
PatientBirthDate, AccessionNumber and PatientID never leave this module
unless one of them is the configured id. Export file names (often a
patient's name) stay in the run's private rows table; the manifest and
everything under ``results/`` name a file by its pseudonym (``shown_path``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boneage.imageio import is_dicom, read_header
from boneage.labels import parse_label
from boneage.salt import pseudonym, read_salt
from boneage.sources.rows import finish, parse_sex
from boneage.sources.spreadsheet import UNITS, read_table

_AGE = re.compile(r"^(\d{1,3})([DWMY])$")
_PER_MONTH = {"D": 30.4375, "W": 30.4375 / 7, "M": 1.0, "Y": 1 / 12}


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


def read_dicom_folder(spec: dict[str, Any]) -> pd.DataFrame:
    """One source row per DICOM file under ``spec["folder"]`` (headers only, no pixels)."""
    root = Path(spec["folder"])
    id_field = spec.get("id_field", "StudyInstanceUID")
    salt = read_salt(spec)
    hide = spec.get("pseudonymize", True)
    records = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        record: dict[str, Any] = {
            "path": rel,
            "error": None,
            "shown_path": pseudonym(rel, salt, "F"),
        }
        if not is_dicom(path):
            if path.suffix.lower() != ".dcm":
                continue  # not part of the export (README, DICOMDIR index, ...)
            record.update(id=pseudonym(rel, salt), key=None, error="unreadable_image")
        else:
            try:
                ds, truncated = read_header(path)
                key = str(getattr(ds, id_field, "") or "")
                record.update(
                    key=key or None,
                    sex=parse_sex(getattr(ds, "PatientSex", "")),
                    chrono_age=age_months(ds),
                    body_part=str(ds.get("BodyPartExamined", "") or ""),
                    modality=str(ds.get("Modality", "") or ""),
                    id=(pseudonym(key, salt) if hide else key) if key else pseudonym(rel, salt),
                )
                if truncated:
                    record["error"] = "truncated"  # before duplicate_id: the file is broken
                elif not key:
                    record["error"] = "missing_id"
            except Exception:  # noqa: BLE001 - any header pydicom cannot parse
                record.update(id=pseudonym(rel, salt), key=None, error="unreadable_image")
        records.append(record)
    frame = pd.DataFrame(
        records,
        columns=[
            "path",
            "error",
            "id",
            "key",
            "sex",
            "chrono_age",
            "body_part",
            "modality",
            "shown_path",
        ],
    ).fillna({"body_part": "", "modality": ""})
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
