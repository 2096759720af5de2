"""The report's numbers against the truth: read back from report.html, worked out from the data.

The truth comes from a run's own tables: held-out MAE, bias, RMSE and
within-N shares from the predictions and the split (as docs/report.md defines
them: the test subset of a training cohort, every image of another, labels
that are bounds left out), rejections per reason from the manifest. The
report must show the metrics files' figures as rounded for display, and the
metrics files must equal the figures worked out here.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: Label statuses scored against (a censored label is a bound, not a value).
SCORED = ("exact", "range", "corrected")
WITHIN = (6, 12, 18, 24, 36)


def _cells(row: str) -> list[str]:
    return [
        htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


def metric_rows(page: str) -> dict[tuple[str, str, str, str], list[str]]:
    """{(experiment, cohort, reference, row label): cell texts} of every metrics table."""
    out = {}
    for section in re.split(r"<h3>", page):
        head = re.match(r"(\S+) on (\S+) <span", section)
        if not head:
            continue
        for table in re.findall(r'<table class="metrics">(.*?)</table>', section, re.S):
            ref = re.search(r'<th class="l">against ([^<]+)</th>', table).group(1)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
                cells = _cells(row)
                out[(head[1], head[2], ref, cells[0])] = cells[1:]
    return out


def cross_cohort(page: str) -> dict[tuple[str, str], str]:
    """{(model, cohort): cell} of the cohort-to-cohort matrix."""
    table = re.search(r'<table id="cross-cohort">(.*?)</table>', page, re.S).group(1)
    rows = [_cells(r) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    cohorts = [c.rstrip("*") for c in rows[0][1:]]
    return {(r[0], c): v for r in rows[1:] for c, v in zip(cohorts, r[1:])}


def held_out_truth(predictions: pd.DataFrame, trained_on_cohort: bool) -> dict[str, float]:
    """Held-out figures against the label, worked out from the predictions table alone."""
    held = predictions[predictions["subset"] == "test"] if trained_on_cohort else predictions
    held = held[held["label_status"].isin(SCORED) | held["label_status"].isna()]
    held = held[held["boneage"].notna()]
    err = held["pred"].to_numpy(float) - held["boneage"].to_numpy(float)
    truth = {"n": len(err)}
    if len(err):
        truth.update(
            mae=float(np.abs(err).mean()),
            bias=float(err.mean()),
            rmse=float(np.sqrt((err**2).mean())),
        )
        truth.update({f"within_{w}": float((np.abs(err) <= w).mean()) for w in WITHIN})
    return truth


def check_metrics(results: Path, experiment: str, cohort: str, trained_on_cohort: bool) -> None:
    """The metrics file equals the truth, and the report shows it (overall and by sex)."""
    page = (results / "report.html").read_text()
    rows = metric_rows(page)
    metrics = json.loads((results / f"metrics/{experiment}/{cohort}.json").read_text())
    predictions = pd.read_csv(
        results / f"predictions/{experiment}/{cohort}.tsv",
        sep="\t",
        dtype={"id": str, "label_status": str, "subset": str},
        keep_default_na=False,
        na_values={"boneage": [""], "label_status": [""]},
    )
    truth = held_out_truth(predictions, trained_on_cohort)
    m = metrics["label"]["all"]
    assert m["n"] == truth["n"], (experiment, cohort)
    for key, value in truth.items():
        assert m[key] == pytest.approx(value, abs=1e-9), (experiment, cohort, key)
    cells = rows[(experiment, cohort, "label", "all")]
    assert int(cells[0]) == truth["n"]
    if not truth["n"]:
        return
    n, mae_ci, rmse, bias, *within = cells
    lo, hi = m["mae_ci"]
    assert mae_ci == f"{truth['mae']:.2f} [{lo:.1f}–{hi:.1f}]"
    assert lo <= truth["mae"] <= hi
    assert rmse == f"{truth['rmse']:.2f}" and bias == f"{truth['bias']:+.2f}"
    assert within == [f"{truth[f'within_{w}'] * 100:.0f}%" for w in WITHIN]
    for sex in ("F", "M"):
        part = held_out_truth(predictions[predictions["sex"] == sex], trained_on_cohort)
        shown = rows.get((experiment, cohort, "label", f"sex {sex}"))
        if part["n"]:
            assert int(shown[0]) == part["n"] and shown[1].startswith(f"{part['mae']:.2f}")
    assert cross_cohort(page)[(experiment, cohort)] == f"{truth['mae']:.2f}"


def check_rejections(results: Path, cohort: str) -> None:
    """The QC section's counts and rejections per reason equal the cohort's manifest."""
    page = (results / "report.html").read_text()
    manifest = pd.read_csv(results / f"cohorts/{cohort}/manifest.tsv", sep="\t", dtype=str)
    qc = page[page.index('<h2 id="qc">') : page.index('<h2 id="training">')]
    section = re.search(rf"<h3>{re.escape(cohort)}</h3>(.*?)(?:<h3>|$)", qc, re.S).group(1)
    counts = dict(re.findall(r'<tr><th class="l">([^<]+)</th><td>(\d+)</td></tr>', section))
    assert int(counts["rows in source"]) == len(manifest), cohort
    assert int(counts["accepted"]) == (manifest["status"] == "accepted").sum(), cohort
    assert int(counts["rejected"]) == (manifest["status"] == "rejected").sum(), cohort
    table = re.search(r'<table class="qc-reasons">(.*?)</table>', section, re.S).group(1)
    shown = {
        reason: int(k)
        for reason, k in re.findall(
            r'<td class="l">(\w+)</td><td class="l">[^<]*</td><td>(\d+)</td>', table
        )
    }
    rejected = manifest.loc[manifest["status"] == "rejected", "reason"]
    assert shown == rejected.value_counts().to_dict(), cohort
