"""Doctors' review decisions applied with an audit trail."""

from __future__ import annotations

import pandas as pd
import pytest

from boneage.corrections import read_corrections
from boneage.manifest import build_manifest


def _cohort(tmp_path, tiny_cohort, corrections: str):
    (tmp_path / "review.csv").write_text(corrections)
    return {
        "source": "synthetic",
        "csv": str(tiny_cohort / "labels.csv"),
        "images": str(tiny_cohort / "images"),
        "truth": str(tiny_cohort / "truth.csv"),
        "corrections": str(tmp_path / "review.csv"),
    }


def test_update_delete_problematic_with_audit(tmp_path, tiny_cohort):
    spec = _cohort(
        tmp_path,
        tiny_cohort,
        "id,action,boneage_months,reviewer,date,note\n"
        "1001,update,150,Dr. A,2026-05-01,re-read\n"
        "1002,delete,,Dr. A,2026-05-01,not a hand\n"
        "1003,problematic,,Dr. B,2026-05-02,blurred\n"
        "9999,delete,,Dr. B,2026-05-02,unknown id\n",
    )
    checked, plan, unmatched = build_manifest(spec, 12)
    rows = checked.set_index("id")
    original = pd.read_csv(tiny_cohort / "labels.csv", dtype={"id": str}).set_index("id")
    assert rows.loc["1001", "boneage"] == 150 and rows.loc["1001", "label_status"] == "corrected"
    assert rows.loc["1001", "corrected_from"] == original.loc["1001", "boneage"]
    assert rows.loc["1001", "corrected_by"] == "Dr. A"
    assert rows.loc["1002", "reason"] == "deleted_by_review"
    assert rows.loc["1003", "reason"] == "flagged_by_review"
    assert rows.loc["1003", "corrected_on"] == "2026-05-02"
    assert unmatched == ["9999"]
    assert len(checked) == 40  # nothing vanished


def test_bad_review_file_names_rows(tmp_path):
    (tmp_path / "r.csv").write_text("id,action,boneage_months\n1,update,\n2,rename,\n3,update,90\n")
    with pytest.raises(ValueError, match=r"rows \[2, 3\]"):
        read_corrections(tmp_path / "r.csv")
