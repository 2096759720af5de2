"""The report's numbers are the data's (tests/report_truth.py): the tiny run's tables."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from report_truth import SCORED, check_metrics, check_rejections, held_out_truth

from boneage.workflow_run import tool_env

pytestmark = pytest.mark.slow


def test_report_tables_equal_the_metrics_and_the_metrics_equal_the_data(workflow_report):
    check_metrics(workflow_report.parent, "quick", "tiny", trained_on_cohort=True)


def test_report_rejections_equal_the_manifest(workflow_report):
    check_rejections(workflow_report.parent, "tiny")


def test_summary_prints_the_held_out_mae_the_baseline_and_their_ratio(workflow_report):
    """`boneage summary` (the quick start's last lines), against figures worked out here:
    the baseline predicts the mean training label for the same held-out films."""
    work = workflow_report.parent.parent
    out = subprocess.run(
        [sys.executable, "-m", "boneage.cli", "summary"],
        capture_output=True,
        text=True,
        cwd=work,
        env=tool_env(),
        timeout=120,
        check=True,
    ).stdout
    predictions = pd.read_csv(work / "results/predictions/quick/tiny.tsv", sep="\t")
    truth = held_out_truth(predictions, trained_on_cohort=True)
    train = predictions[
        (predictions["subset"] == "train") & predictions["label_status"].isin(SCORED)
    ]
    held = predictions[(predictions["subset"] == "test") & predictions["label_status"].isin(SCORED)]
    baseline = float((held["boneage"] - train["boneage"].mean()).abs().mean())
    row = next(line.split() for line in out.splitlines() if line.startswith("quick"))
    n, mae, _true, base, ratio = row[2:7]
    assert int(n) == truth["n"] and float(mae) == pytest.approx(truth["mae"], abs=0.005)
    assert float(base) == pytest.approx(baseline, abs=0.005)
    assert float(ratio) == pytest.approx(truth["mae"] / baseline, abs=0.005)
    digest = json.loads((work / "results/models/quick/train.json").read_text())["model_digest"]
    assert row[7] == digest and "STALE" not in out
    assert f"report: {workflow_report.resolve()}" in out
