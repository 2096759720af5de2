"""Hand-typed bone-age cells: every row of the ingestion table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from boneage.labels import STATUSES, parse_label, parse_labels

CELLS = [
    ("16", 16, "exact"),
    ("13.5", 13.5, "exact"),
    (12, 12, "exact"),
    ("7,5", 7.5, "exact"),
    ("12-13", 12.5, "range"),
    ("13.5-14", 13.75, "range"),
    ("11-12", 11.5, "range"),
    ("-- 8-9", 8.5, "range"),
    ("--15.5-\n16", 15.75, "range"),
    ("13 +", 13, "censored"),
    ("15+", 15, "censored"),
    ("> 16", 16, "censored"),
    ("N/A", None, "missing"),
    (":", None, "missing"),
    ("", None, "missing"),
    (None, None, "missing"),
    (float("nan"), None, "missing"),
    ("(2009/09/24)", None, "unparseable"),
    ("14-12", None, "unparseable"),
    ("twelve", None, "unparseable"),
    ("-5", -5, "exact"),
    ("12\n", 12, "exact"),
    ("\u0661\u0662", 12, "exact"),  # Arabic-Indic digits
    (" 12", 12, "exact"),
    ("007", 7, "exact"),
]


@pytest.mark.parametrize("cell,value,status", CELLS)
def test_table(cell, value, status):
    label = parse_label(cell)
    assert label.status == status and status in STATUSES
    if value is None:
        assert math.isnan(label.value)
    else:
        assert label.value == pytest.approx(value)


def test_raw_string_is_kept():
    assert parse_label("--15.5-\n16").raw == "--15.5-\n16"


def test_a_column_parses_as_each_cell_does():
    cells = pd.Series([c for c, _, _ in CELLS] * 3, index=range(100, 100 + 3 * len(CELLS)))
    values, statuses = parse_labels(cells)
    each = [parse_label(c) for c in cells]
    assert list(statuses) == [lab.status for lab in each]
    np.testing.assert_array_equal(values, [lab.value for lab in each])  # NaN where none
