"""Hospital label sheets (xlsx or csv) with hand-typed bone ages.

Config (one ``cohorts:`` entry)::

    source: spreadsheet
    table: labels.xlsx            # or .csv
    sheet: Sheet1                 # xlsx only; default: the first sheet
    images: /data/pacs-export     # image root (nested folders searched)
    label_unit: years             # or months
    columns: {id: Study, boneage: "Bone age", sex: Sex}   # also: image, patient
    image_pattern: "{id}.png"     # when there is no image column

Each label cell is parsed by :func:`boneage.labels.parse_label`; its original
string is kept in ``label_raw``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from boneage.labels import parse_label
from boneage.sources.rows import finish, image_index, parse_sex

UNITS = {"years": 12.0, "months": 1.0}


def read_table(path: str | os.PathLike[str], sheet: str | int | None = None) -> pd.DataFrame:
    """A csv or xlsx table with every cell as a string (nothing guessed or dropped)."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        frame = pd.read_excel(
            path,
            sheet_name=sheet if sheet is not None else 0,
            dtype=str,
            engine="openpyxl",
            keep_default_na=False,
        )
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_spreadsheet(spec: dict[str, Any]) -> pd.DataFrame:
    """Read a hospital sheet as source rows (see the module docstring for ``spec``)."""
    cols = spec["columns"]
    raw = read_table(spec["table"], spec.get("sheet"))
    missing = [f"{k}: {v!r}" for k, v in cols.items() if v not in raw.columns]
    if missing:
        raise ValueError(
            f"{spec['table']}: column(s) not found ({', '.join(missing)}); "
            f"the sheet has {list(raw.columns)}"
        )
    scale = UNITS[spec.get("label_unit", "years")]
    ids = raw[cols["id"]].str.strip()
    labels = [parse_label(c) for c in raw[cols["boneage"]]]
    if "image" in cols:
        paths = raw[cols["image"]].str.strip()
    else:
        found = image_index(spec["images"])
        pattern = spec.get("image_pattern", "{id}.png")
        paths = pd.Series(
            [found.get(Path(pattern.format(id=i)).stem, pattern.format(id=i)) for i in ids]
        )
    frame = pd.DataFrame(
        {
            "id": ids,
            "path": paths.values,
            "sex": raw[cols["sex"]].map(parse_sex).values if "sex" in cols else None,
            "boneage": [lab.value * scale for lab in labels],
            "label_raw": [lab.raw for lab in labels],
            "label_status": [lab.status for lab in labels],
        }
    )
    if "patient" in cols:
        frame["patient"] = raw[cols["patient"]].str.strip().replace("", None).values
    if "age" in cols:  # chronological age: a number, decimal comma allowed; else unknown
        cells = raw[cols["age"]].str.strip().str.replace(",", ".", regex=False)
        age_scale = UNITS[spec.get("age_unit", "years")]
        frame["chrono_age"] = (pd.to_numeric(cells, errors="coerce") * age_scale).values
    return finish(frame)
