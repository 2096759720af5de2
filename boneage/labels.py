"""Parse bone-age cells typed by hand in hospital spreadsheets.

Every cell keeps its original string; :func:`parse_label` returns a value (in
the sheet's unit) and a status:

=============  ======================================  ======================
status         examples                                value
=============  ======================================  ======================
exact          ``16``, ``13.5``                        the number
range          ``12-13``, ``-- 8-9``, ``--15.5-\\n16``   the midpoint
censored       ``13 +``, ``15+``, ``> 16``             the lower bound
missing        ``N/A``, ``:``, empty                   none
unparseable    ``(2009/09/24)``, ``twelve``            none
=============  ======================================  ======================

A correction sheet's value has status ``corrected`` and a film without a
label ``unlabelled``. ``exact``, ``range`` and ``corrected`` labels train by
default; ``censored`` ones when the config allows. This module holds the one
vocabulary of label statuses.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: What :func:`parse_label` gives a cell.
STATUSES = ("exact", "range", "censored", "missing", "unparseable")
#: Every status a manifest row's label can have: a cell's, a correction's, or no label.
ALL_STATUSES = (*STATUSES, "corrected", "unlabelled")
#: Statuses that train by default (censored ones when the config says so).
TRAINABLE = ("exact", "range", "corrected")
MISSING_TOKENS = {"", "n/a", "na", "nan", "none", "null", ":", "-", "--", "?", "nil", "/"}

_NUM = r"(\d+(?:[.,]\d+)?)"
_PLAIN = re.compile(r"\d+(?:\.\d+)?$")
_ASCII_PLAIN = r"[0-9]+(?:\.[0-9]+)?"  # what pandas parses as parse_label would
_EXACT = re.compile(r"^(-?\d+(?:[.,]\d+)?)$")  # a sign is allowed: "-5" is impossible
_RANGE = re.compile(rf"^{_NUM}\s*(?:-|–|—|~|to)\s*{_NUM}$")
_CENSORED = re.compile(rf"^(?:>=?|≥)?\s*{_NUM}\s*\+?$")


@dataclass(frozen=True)
class Label:
    """A parsed cell: ``value`` (sheet unit, NaN when none), ``status``, ``raw`` string."""

    value: float
    status: str
    raw: str


def _num(text: str) -> float:
    return float(text.replace(",", "."))


def parse_label(cell: Any) -> Label:
    """Parse one spreadsheet cell (str, number or None) into a :class:`Label`."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return Label(math.nan, "missing", "")
    raw = str(cell)
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return Label(float(cell), "exact", raw)
    if _PLAIN.match(raw):  # the common case, "123" or "123.5": no rewriting needed
        return Label(float(raw), "exact", raw)
    text = re.sub(r"\s*\n\s*", "", raw).strip()  # "--15.5-\n16" -> "--15.5-16"
    # "--15.5-16", "-- 8-9": a run of dashes (or a dash and a space) is noise; "-5" is a sign.
    text = re.sub(r"^(?:[-–—]{2,}|[-–—]\s)\s*(?=\d)", "", text)
    if text.lower() in MISSING_TOKENS:
        return Label(math.nan, "missing", raw)
    if m := _EXACT.match(text):
        return Label(_num(m.group(1)), "exact", raw)
    if m := _RANGE.match(text):
        lo, hi = _num(m.group(1)), _num(m.group(2))
        if lo <= hi:
            return Label((lo + hi) / 2, "range", raw)
        return Label(math.nan, "unparseable", raw)
    if ("+" in text or text.startswith((">", "≥"))) and (m := _CENSORED.match(text)):
        return Label(_num(m.group(1)), "censored", raw)
    return Label(math.nan, "unparseable", raw)


def parse_labels(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(values, statuses)`` of :func:`parse_label` for each cell of a column.

    Plain numbers, nearly every cell of a large cohort, are parsed in one
    vectorised pass (a million cells: 0.6 s instead of 2.4 s); the rest cell by cell.
    """
    cells = cells.reset_index(drop=True)
    text = cells.where(cells.map(lambda c: isinstance(c, str))).astype(object)
    plain = text.str.fullmatch(_ASCII_PLAIN).to_numpy(dtype=bool, na_value=False)
    values = pd.to_numeric(text.where(plain), errors="coerce").to_numpy(float)
    statuses = np.full(len(cells), "exact", dtype=object)
    for i in np.flatnonzero(~plain):
        label = parse_label(cells[i])
        values[i], statuses[i] = label.value, label.status
    return values, statuses
