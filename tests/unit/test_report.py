"""The HTML report: self-contained, escaped, complete."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from harness import EVIL, FAKE_RUN, fake_results

from boneage.atomic import read_tsv, write_json, write_tsv
from boneage.report.build import build_report
from boneage.report.summary import summary_rows


def test_report_is_self_contained_and_escaped(tmp_path):
    fake_results(tmp_path / "results")
    bench = tmp_path / "benchmarks" / "train"
    bench.mkdir(parents=True)
    (bench / "e1.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t800.0\n")
    out = tmp_path / "report.html"
    build_report(
        tmp_path / "results",
        tmp_path / "benchmarks",
        json.dumps({**FAKE_RUN, "report": {"title": f"T {EVIL}"}}),
        out,
    )
    html = out.read_text()
    assert EVIL not in html and "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert html.count("data:image/png;base64,") >= 5
    for section in (
        "Overview",
        "Accuracy by cohort",
        "Quality control",
        "Training curves",
        "Provenance",
        "no_hand",
        "missing_file",
        "Bland-Altman",
    ):
        assert section.lower() in html.lower(), section
    assert "train" in html and "12.5" in html  # per-rule time from the benchmark file
    labels = re.search(r'<table class="labels">(.*?)</table>', html, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", labels)
    assert cells == ["0", "1", "0", "0", "1", "1", "0", "1 / 0 / 0"]


def test_review_lists_the_configured_count_and_the_earlier_corrections(tmp_path):
    """The review holds ``review_cases`` films and, for the download, the cohort's file as read."""
    fake_results(tmp_path / "results")
    sheet = tmp_path / "review.csv"
    sheet.write_text(
        "id,action,boneage_months,reviewer,date,note\n"
        f'"{EVIL}",update,150.0,Dr. A,2026-05-01,"re-read, atlas"\n'
        "b,delete,,Dr. B,2026-05-02,\n"
    )
    config = {
        **FAKE_RUN,
        "report": {"review_cases": 7},
        "cohorts": {"c1": {**FAKE_RUN["cohorts"]["c1"], "corrections": str(sheet)}},
    }
    out = tmp_path / "report.html"
    build_report(tmp_path / "results", tmp_path / "benchmarks", json.dumps(config), out)
    html = out.read_text()
    assert EVIL not in html
    review = re.search(r'<table class="review sortable".*?</table>', html, re.S).group(0)
    assert review.count("<tr data-id=") == 7 and review.count('data-action="update"') == 7
    earlier = re.search(r'<script type="application/json" class="earlier">(.*?)</script>', html)
    assert json.loads(earlier.group(1)) == [
        [EVIL, "update", "150", "Dr. A", "2026-05-01", "re-read, atlas"],
        ["b", "delete", "", "Dr. B", "2026-05-02", ""],
    ]
    assert 'data-columns="id,action,boneage_months,reviewer,date,note"' in html


def test_provenance_names_each_model_and_flags_metrics_of_another_model(tmp_path):
    from boneage.atomic import load_json

    results = tmp_path / "results"
    fake_results(results)
    out = tmp_path / "report.html"
    build_report(results, tmp_path / "benchmarks", json.dumps(FAKE_RUN), out)
    row = re.search(r'<tr data-model="e1">(.*?)</tr>', out.read_text(), re.S).group(1)
    assert "5eed0000000000d1" in row and "aaaaaaaaaaaa" in row and "bbbbbbbbbbbb" in row
    assert "c1: current" in row and "STALE" not in row
    # A model retrained after the metrics were made: the metrics are flagged.
    summary = load_json(results / "models/e1/train.json")
    write_json(results / "models/e1/train.json", {**summary, "model_digest": "0therm0de1000000"})
    build_report(results, tmp_path / "benchmarks", json.dumps(FAKE_RUN), out)
    row = re.search(r'<tr class="stale" data-model="e1">(.*?)</tr>', out.read_text(), re.S).group(1)
    assert "c1: STALE, made by model 5eed0000000000d1" in row


def test_summary_rows(tmp_path):
    fake_results(tmp_path / "results")
    (row,) = summary_rows(tmp_path / "results")
    assert row["cohort"] == "c1" and row["ratio"] < 0.5
    assert row["model_digest"] == "5eed0000000000d1" and row["stale"] is False


def test_the_report_does_not_grow_with_the_cohort(tmp_path):
    """60, 6,000 and 60,000 predictions: the page's size is bounded (the plots fill up
    with points, the lists are capped): measured 0.19, 0.33 and 0.31 MB."""
    sizes = []
    for n in (60, 6_000, 60_000):
        results = tmp_path / str(n) / "results"
        fake_results(results, n)
        build_report(results, tmp_path / "none", json.dumps(FAKE_RUN), tmp_path / f"{n}.html")
        sizes.append((tmp_path / f"{n}.html").stat().st_size)
    assert sizes[2] < 1.05 * sizes[1] and max(sizes) < 500_000, sizes


def test_memory_plans_from_the_calibration():
    from boneage.report.build import memory_plans

    cal = {
        "small_cnn": {
            "peak_rss_mb": 8000.0,
            "estimate_mb": 7600.0,
            "images": 256,
            "threads": 1,
            "images_per_s": 40.0,
        }
    }
    node = {"mem_mb": 65536, "cores": 24, "reserve_mb": 2048, "margin": 0.2}
    (row,) = memory_plans(cal, node)
    assert row["plan"].startswith("6 processes x 4 threads")  # 8000 x 1.2 + 300 = 9900 MB
    (small,) = memory_plans(cal, {"mem_mb": 4096, "cores": 4})
    assert "one process needs" in small["plan"]
    assert memory_plans(cal, None)[0]["plan"] is None


def test_model_card_counts_training_data_and_names_what_was_not_tested(tmp_path):
    from boneage.report.collect import collect
    from boneage.report.model_card import model_cards

    results = tmp_path / "results"
    fake_results(results)
    ids = [EVIL, "b", "c"]
    write_tsv(
        results / "cohorts/c1/manifest.tsv",
        read_tsv(results / "cohorts/c1/manifest.tsv").assign(
            sex=["F", "M", "F"], boneage=[30.0, 100.0, 150.0]
        ),
    )
    split = pd.DataFrame({"id": ids, "patient": ids, "subset": ["train", "val", "test"]})
    write_tsv(results / "cohorts/c1/split.tsv", split)
    [card] = model_cards(collect(FAKE_RUN, results, tmp_path / "none"), results, ["c1"])
    assert card["name"] == "e1" and card["training"]["subsets"] == {"train": 1, "val": 1, "test": 1}
    assert card["training"]["by_sex"] == {"F": 1, "M": 1}  # train + val only
    assert card["training"]["by_band"]["2-6 y"] == 1 and card["training"]["by_band"]["6-10 y"] == 1
    [scores] = card["scores"]
    assert scores["cohort"] == "c1" and scores["all"]["n"] == sum(
        s["n"] for s in scores["by_sex"].values()
    )
    assert any(g.startswith("ages 0-2 y") for g in card["not_tested"])  # few held-out infants


def test_bone_age_against_chronological_age():
    from boneage.report.chrono import chrono_comparison

    preds = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "sex": ["F", "F", "M", "M"],
            "pred": [100.0, 60.0, 150.0, 90.0],
        }
    )
    manifest = pd.DataFrame({"id": ["a", "b", "c", "d"], "chrono_age": [96.0, 90.0, 150.0, None]})
    c = chrono_comparison(preds, manifest, n=2)
    assert c["n"] == 3  # d has no age
    f_band = next(r for r in c["rows"] if r["sex"] == "F" and r["band"] == "6-10 y")
    assert f_band["n"] == 2 and f_band["mean"] == pytest.approx((4 - 30) / 2)
    assert [(e["id"], e["direction"]) for e in c["extremes"]] == [
        ("b", "delayed"),
        ("a", "advanced"),
    ]
    assert chrono_comparison(preds, manifest.assign(chrono_age=None)) is None
