"""Messy real-world cohorts through the whole workflow: nothing lost, nothing crashes."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import write_png
from dicom_helpers import IDENTIFYING, write_dicom, write_undecodable
from harness import TINY
from PIL import Image

from boneage.synth.cohort import render_study, sample_studies
from boneage.workflow_run import snakemake

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # minutes: the heavy tier

# (id, boneage cell, male cell, what is wrong) -> expected reason (None: accepted)
MESSY = [
    ("h1", "120", "True", "hand", None),
    ("h2", "96", "False", "hand", None),
    ("h3", "150", "True", "hand-inverted", None),
    ("h4", "60", "False", "hand", None),
    ("gone", "100", "True", "no file", "missing_file"),
    ("empty", "100", "True", "empty file", "empty_file"),
    ("text", "100", "True", "not an image", "unreadable_image"),
    ("trunc", "100", "True", "truncated png", "unreadable_image"),
    ("bomb", "100", "True", "huge pixel count", "decompression_bomb"),
    ("h1", "121", "True", "duplicate id", "duplicate_id"),
    ("../outside", "100", "True", "path escapes", "path_escapes_root"),
    ("neg", "-4", "True", "negative label", "impossible_label"),
    ("old", "300", "False", "label > 20 y", "impossible_label"),
    ("nan", "nan", "False", "NaN label", "missing_label"),
    ("nosex", "100", "", "missing sex", "missing_sex"),
    ("chest", "100", "True", "chest film", "no_hand"),
    ("h5", "130", "True", "hand", None),
    ("h6", "40", "False", "hand", None),
]


def _messy_cohort(root):
    images = root / "images"
    images.mkdir(parents=True)
    studies = sample_studies(200, 21, nonhand_share=0.2)
    hands = iter(s for s in studies if s.kind == "hand")
    chest = next(s for s in studies if s.kind == "chest")
    for sid, _, _, what, _ in MESSY:
        path = images / f"{sid}.png"
        if what.startswith("hand") and not path.exists():
            img = render_study(next(hands), 21)
            write_png(path, 255 - img if what == "hand-inverted" else img)
        elif what == "empty file":
            path.write_bytes(b"")
        elif what == "not an image":
            path.write_text("<html>a PACS error page</html>")
        elif what == "truncated png":
            write_png(path, render_study(next(hands), 21))
            path.write_bytes(path.read_bytes()[:500])
        elif what == "huge pixel count":
            Image.new("1", (12000, 9000)).save(path)
        elif what == "chest film":
            write_png(path, render_study(chest, 21))
        elif what in ("negative label", "label > 20 y", "NaN label", "missing sex"):
            write_png(path, render_study(next(hands), 21))
    write_png(root / "outside.png", render_study(next(hands), 21))
    lines = ["id,boneage,male"] + [f"{i},{b},{m}" for i, b, m, _, _ in MESSY]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    (root / "review.csv").write_text("id,action,boneage_months,reviewer,date,note\n")


def _pacs(root):
    root.mkdir()
    hands = (s for s in sample_studies(50, 5) if s.kind == "hand")
    for k in range(3):
        write_dicom(
            root / f"img{k}.dcm",
            render_study(next(hands), 5).astype(np.uint16) * 16,
            PatientAge=f"{8 + k:03d}Y",
        )
    write_undecodable(root / "mpeg2.dcm")


def test_messy_cohorts_finish_with_every_row_accounted(tmp_path, monkeypatch):
    monkeypatch.setenv("BONEAGE_TEST_SALT", "x")
    _messy_cohort(tmp_path / "messy")
    _pacs(tmp_path / "pacs")
    config = {
        **TINY,
        "cohorts": {
            **TINY["cohorts"],
            "messy": {
                "source": "rsna",
                "csv": str(tmp_path / "messy/labels.csv"),
                "images": str(tmp_path / "messy/images"),
                "corrections": str(tmp_path / "messy/review.csv"),
            },
            "pacs": {
                "source": "dicom",
                "folder": str(tmp_path / "pacs"),
                "salt_env": "BONEAGE_TEST_SALT",
            },
        },
        "shards": {"format": "zarr", "size": 6},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = tmp_path / "results"

    manifest = pd.read_csv(res / "cohorts/messy/manifest.tsv", sep="\t", dtype={"id": str})
    assert len(manifest) == len(MESSY)
    assert (manifest["status"] == "accepted").sum() + (
        manifest["status"] == "rejected"
    ).sum() == len(MESSY)
    got = [None if pd.isna(r) else r for r in manifest.sort_values("row")["reason"]]
    assert got == [m[4] for m in MESSY]
    assert manifest.loc[manifest["id"] == "h3", "inverted"].astype(str).item() == "True"
    metrics = json.loads((res / "metrics/quick/messy.json").read_text())
    assert metrics["n_images"] == 6 and metrics["held_out"] == "all images"

    pacs = pd.read_csv(res / "cohorts/pacs/manifest.tsv", sep="\t")
    assert pacs["reason"].fillna("ok").value_counts().to_dict() == {
        "ok": 3,
        "unsupported_compression": 1,
    }
    preds = (res / "predictions/quick/pacs.tsv").read_text()
    html = (res / "report.html").read_text()
    for value in IDENTIFYING.values():
        assert value not in preds and value not in html
    for reason in ("decompression_bomb", "path_escapes_root", "unsupported_compression"):
        assert reason in html

    # A reviewer's update re-shards only the shard that holds the row (h5: rows 13-18).
    shards = sorted((res / "cohorts/messy/shards").iterdir())
    before = {p.name: p.stat().st_mtime_ns for p in shards}
    time.sleep(1.1)
    (tmp_path / "messy/review.csv").write_text(
        "id,action,boneage_months,reviewer,date,note\nh5,update,140,Dr. A,2026-05-01,re-read\n"
    )
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in sorted((res / "cohorts/messy/shards").iterdir())}
    assert [n for n in before if before[n] != after[n]] == ["s00002.zarr"]
    manifest = pd.read_csv(res / "cohorts/messy/manifest.tsv", sep="\t", dtype={"id": str})
    h5 = manifest.set_index("id").loc["h5"]
    assert h5["boneage"] == 140 and h5["corrected_from"] == 130 and h5["corrected_by"] == "Dr. A"
