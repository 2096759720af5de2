"""The table of source rows every cohort reader returns, and the helpers that build it.

Every reader returns a :class:`pandas.DataFrame` with exactly :data:`COLUMNS`,
one row per source row (nothing is filtered here; :mod:`boneage.manifest`
decides what is accepted):

================  ========================================================
``row``           1-based row number in the source (audit trail)
``id``            study identifier as the cohort names it (str)
``path``          image path relative to the image root
``sex``           ``"M"``, ``"F"`` or missing
``boneage``       label in months (float) or missing
``label_raw``     the label cell exactly as read (str)
``label_status``  ``exact``/``range``/``censored``/``missing``/``unparseable``
                  (:mod:`boneage.labels`), or ``unlabelled`` for a cohort
                  without labels (inference only)
``patient``       patient identifier (defaults to ``id``)
``true_boneage``  reference bone age in months where a truth file has one
``chrono_age``    chronological age in months where the source has one
``body_part``     DICOM BodyPartExamined (not identifying), else empty
``modality``      DICOM Modality (CR, DX, MR, ...), else empty
================  ========================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = [
    "row",
    "id",
    "path",
    "sex",
    "boneage",
    "label_raw",
    "label_status",
    "patient",
    "true_boneage",
    "chrono_age",
    "body_part",
    "modality",
    "shown_path",  # the path results show: ``path``, or a DICOM file's pseudonym
]
TRUE_WORDS = {"true", "1", "m", "male", "yes", "boy", "man"}
FALSE_WORDS = {"false", "0", "f", "female", "no", "girl", "woman"}
IMAGE_SUFFIXES = (".png", ".dcm", ".jpg", ".jpeg", ".tif", ".tiff")


def parse_sex(value: Any) -> str | None:
    """Map RSNA's ``male`` (True/False) or a sex cell (M/F, male/female) to ``"M"``/``"F"``."""
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return "M"
    if text in FALSE_WORDS:
        return "F"
    return None


def image_index(root: str | os.PathLike[str]) -> dict[str, str]:
    """Map each image's file stem to its path relative to ``root`` (nested folders too).

    When two files share a stem, the first in sorted order wins.
    """
    found: dict[str, str] = {}
    base = Path(root)
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        rel = os.path.relpath(folder, base)  # once per folder: a million files, one folder
        prefix = "" if rel == "." else rel + os.sep
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES and stem not in found:
                found[stem] = prefix + name
    return found


def finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns with their defaults and order them as :data:`COLUMNS`."""
    out = frame.copy()
    out["row"] = np.arange(1, len(out) + 1)
    defaults = {
        "patient": out["id"],
        "true_boneage": np.nan,
        "chrono_age": np.nan,
        "label_status": "exact",
        "label_raw": "",
        "body_part": "",
        "modality": "",
    }
    for col, default in defaults.items():
        if col not in out:
            out[col] = default
    out["patient"] = out["patient"].fillna(out["id"]).astype(str)
    if "shown_path" not in out:
        out["shown_path"] = out["path"]
    return out[COLUMNS]
