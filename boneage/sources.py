"""Read cohort sources into one table of source rows.

Every reader returns a :class:`pandas.DataFrame` with exactly these columns,
one row per source row (nothing filtered here; :mod:`boneage.manifest`
decides what is accepted):

==============  ==========================================================
``row``         1-based row number in the source (audit trail)
``id``          study identifier as the cohort names it (str)
``path``        image path as written, relative to the image root
``sex``         ``"M"``, ``"F"`` or missing
``boneage``     label in months (float) or missing
``label_raw``   the label cell exactly as read (str)
``patient``     patient identifier (defaults to ``id``)
``true_boneage``reference bone age in months where a truth file has one
==============  ==========================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["row", "id", "path", "sex", "boneage", "label_raw", "patient", "true_boneage"]
TRUE_WORDS = {"true", "1", "m", "male", "yes"}
FALSE_WORDS = {"false", "0", "f", "female", "no"}


def parse_sex(value: Any) -> str | None:
    """Map RSNA's ``male`` (True/False) or a sex cell (M/F) to ``"M"``/``"F"``/None."""
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return "M"
    if text in FALSE_WORDS:
        return "F"
    return None


def parse_months(value: Any) -> float:
    """A label cell in months as float; NaN when empty or not a number."""
    try:
        return float(str(value).strip())
    except ValueError:
        return float("nan")


def read_rsna(csv: str | os.PathLike[str],
              truth: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read an RSNA 2017 training CSV (``id,boneage,male``); images are ``<id>.png``.

    ``truth`` optionally names a side file (``id,true_boneage[,patient]``) whose
    columns are joined on ``id``.
    """
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = {"id", "boneage", "male"} - set(raw.columns)
    if missing:
        raise ValueError(f"{csv}: missing column(s) {sorted(missing)}; "
                         f"an RSNA training CSV has id,boneage,male (found {list(raw.columns)})")
    rows = pd.DataFrame({
        "row": np.arange(1, len(raw) + 1),
        "id": raw["id"].str.strip(),
        "path": raw["id"].str.strip() + ".png",
        "sex": raw["male"].map(parse_sex),
        "boneage": raw["boneage"].map(parse_months),
        "label_raw": raw["boneage"],
    })
    rows["patient"] = rows["id"]
    rows["true_boneage"] = np.nan
    if truth is not None:
        side = pd.read_csv(truth, dtype={"id": str, "patient": str})
        side = side.drop_duplicates("id").set_index("id")
        if "true_boneage" in side:
            rows["true_boneage"] = rows["id"].map(side["true_boneage"]).astype(float)
        if "patient" in side:
            rows["patient"] = rows["id"].map(side["patient"]).fillna(rows["id"])
    return rows[COLUMNS]


def read_source(spec: dict[str, Any]) -> tuple[pd.DataFrame, Path]:
    """Dispatch on ``spec["source"]``; return the rows and the image root."""
    kind = spec["source"]
    if kind in ("rsna", "synthetic"):
        return read_rsna(spec["csv"], spec.get("truth")), Path(spec["images"])
    raise ValueError(f"unknown cohort source {kind!r}")
