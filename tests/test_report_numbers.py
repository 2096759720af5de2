"""The report's numbers are the data's: read back from report.html, compared with the truth.

The truth is worked out here from the run's own tables: held-out MAE, bias,
RMSE and within-N shares from the predictions and the split, rejections per
reason and counts from the manifest. The report must show the metrics files'
figures (as rounded for display), and the metrics files must equal the
figures computed here.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import numpy as np
import pandas as pd
import pytest

from boneage.manifest import TRAINABLE

pytestmark = pytest.mark.slow
WITHIN = (6, 12, 18, 24, 36)


def metric_rows(page: str) -> dict[tuple[str, str, str, str], list[str]]:
    """{(experiment, cohort, reference, row label): cell texts} of every metrics table."""
    out = {}
    sections = re.split(r"<h3>", page)
    for section in sections:
        head = re.match(r"(\S+) on (\S+) <span", section)
        if not head:
            continue
        for table in re.findall(r'<table class="metrics">(.*?)</table>', section, re.S):
            ref = re.search(r'<th class="l">against ([^<]+)</th>', table).group(1)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
                cells = [
                    htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                    for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
                ]
                out[(head[1], head[2], ref, cells[0])] = cells[1:]
    return out


def _held_out_truth(predictions: pd.DataFrame) -> dict[str, float]:
    """Held-out figures against the label, computed from the predictions table alone."""
    held = predictions[
        (predictions["subset"] == "test") & predictions["label_status"].isin(TRAINABLE)
    ]
    err = held["pred"].to_numpy(float) - held["boneage"].to_numpy(float)
    truth = {
        "n": len(err),
        "mae": float(np.abs(err).mean()),
        "bias": float(err.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
    }
    truth.update({f"within_{w}": float((np.abs(err) <= w).mean()) for w in WITHIN})
    return truth


def test_report_tables_equal_the_metrics_and_the_metrics_equal_the_data(workflow_report):
    results = workflow_report.parent
    page = workflow_report.read_text()
    rows = metric_rows(page)
    metrics = json.loads((results / "metrics/quick/tiny.json").read_text())
    predictions = pd.read_csv(results / "predictions/quick/tiny.tsv", sep="\t", dtype={"id": str})

    truth = _held_out_truth(predictions)
    m = metrics["label"]["all"]
    assert m["n"] == truth["n"] > 0
    for key, value in truth.items():
        assert m[key] == pytest.approx(value, abs=1e-9), key

    n, mae_ci, rmse, bias, *within = rows[("quick", "tiny", "label", "all")]
    assert int(n) == truth["n"]
    lo, hi = m["mae_ci"]
    assert mae_ci == f"{truth['mae']:.2f} [{lo:.1f}–{hi:.1f}]"
    assert lo <= truth["mae"] <= hi
    assert rmse == f"{truth['rmse']:.2f}" and bias == f"{truth['bias']:+.2f}"
    assert within == [f"{truth[f'within_{w}'] * 100:.0f}%" for w in WITHIN]
    # By sex: each row's n and MAE from the predictions.
    for sex in ("F", "M"):
        part = _held_out_truth(predictions[predictions["sex"] == sex])
        cells = rows[("quick", "tiny", "label", f"sex {sex}")]
        assert int(cells[0]) == part["n"] and cells[1].startswith(f"{part['mae']:.2f}")


def test_report_rejections_equal_the_manifest(workflow_report):
    results = workflow_report.parent
    page = workflow_report.read_text()
    manifest = pd.read_csv(results / "cohorts/tiny/manifest.tsv", sep="\t", dtype=str)
    section = page[page.index('<h2 id="qc">') :]
    counts = dict(re.findall(r'<tr><th class="l">([^<]+)</th><td>(\d+)</td></tr>', section))
    assert int(counts["rows in source"]) == len(manifest)
    assert int(counts["accepted"]) == (manifest["status"] == "accepted").sum()
    assert int(counts["rejected"]) == (manifest["status"] == "rejected").sum() > 0
    table = re.search(r'<table class="qc-reasons">(.*?)</table>', section, re.S).group(1)
    shown = {
        reason: int(k)
        for reason, k in re.findall(
            r'<td class="l">(\w+)</td><td class="l">[^<]*</td><td>(\d+)</td>', table
        )
    }
    assert (
        shown == manifest.loc[manifest["status"] == "rejected", "reason"].value_counts().to_dict()
    )
