"""Apply a doctors' review file on top of the cleaned labels, with an audit trail.

Review file (csv or xlsx), one row per decision, later rows win::

    id,action,boneage_months,reviewer,date,note
    1234,update,150,Dr. A,2026-05-01,re-read with the atlas
    1240,delete,,Dr. A,2026-05-01,not a hand
    1288,problematic,,Dr. B,2026-05-02,motion blur

``update`` sets a new label (months); ``delete`` rejects the row
(``deleted_by_review``); ``problematic`` keeps it out of training and scoring
(``flagged_by_review``). The manifest records old value, new value, action,
reviewer and date for every applied correction.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from boneage.sources.spreadsheet import read_table

ACTIONS = ("update", "delete", "problematic")
COLUMNS = ["id", "action", "boneage_months", "reviewer", "date", "note"]
AUDIT = ["correction", "corrected_from", "corrected_to", "corrected_by", "corrected_on"]


def read_corrections(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and check a review file; ValueError names the bad rows."""
    table = read_table(path)
    missing = [c for c in ("id", "action") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {','.join(COLUMNS)}")
    for col in COLUMNS:
        if col not in table:
            table[col] = ""
    table["id"] = table["id"].str.strip()
    table["action"] = table["action"].str.strip().str.lower()
    bad = table[~table["action"].isin(ACTIONS)]
    new = pd.to_numeric(table["boneage_months"], errors="coerce")
    bad_update = table[(table["action"] == "update") & ~(new.between(0, 240))]
    if len(bad) or len(bad_update):
        rows = sorted(set(bad.index) | set(bad_update.index))
        raise ValueError(
            f"{path}: rows {[r + 2 for r in rows]} need action update/delete/"
            "problematic, and update needs boneage_months in 0-240"
        )
    table["boneage_months"] = new
    return table[COLUMNS]


def apply_corrections(
    rows: pd.DataFrame, corrections: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """Apply review decisions to source rows (see :mod:`boneage.sources`).

    Returns the corrected rows (with :data:`AUDIT` columns and, for delete and
    problematic, an ``error`` reason) and the ids that matched no row.
    """
    out = rows.copy()
    for col in AUDIT:
        out[col] = None
    if "error" not in out:
        out["error"] = None
    index = {i: k for k, i in reversed(list(enumerate(out["id"])))}  # first row of each id
    unmatched = []
    for c in corrections.itertuples(index=False):
        k = index.get(c.id)
        if k is None:
            unmatched.append(c.id)
            continue
        pos = out.index[k]
        old = out.at[pos, "boneage"]
        out.loc[pos, AUDIT] = [
            c.action,
            old,
            c.boneage_months if c.action == "update" else np.nan,
            c.reviewer,
            c.date,
        ]
        if c.action == "update":
            out.at[pos, "boneage"] = float(c.boneage_months)
            out.at[pos, "label_status"] = "corrected"
        else:
            out.at[pos, "error"] = (
                "deleted_by_review" if c.action == "delete" else "flagged_by_review"
            )
    return out, unmatched
