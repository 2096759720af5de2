"""The CLI: steps chain on files; errors are messages, not tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from conftest import REPO

from boneage.cli import main


def test_check_config_cli(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text((REPO / "config.yaml").read_text().replace("size: 256", "size: -3"))
    proc = subprocess.run(
        [sys.executable, "-m", "boneage.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "shards.size" in proc.stderr and "Traceback" not in proc.stderr


def test_ingest_steps_chain(tmp_path, tiny_cohort):
    rows, plan = tmp_path / "rows.tsv", tmp_path / "plan.json"
    spec = {
        "source": "synthetic",
        "csv": str(tiny_cohort / "labels.csv"),
        "images": str(tiny_cohort / "images"),
        "truth": str(tiny_cohort / "truth.csv"),
    }
    main(
        [
            "manifest",
            "--spec",
            json.dumps(spec),
            "--shard-size",
            "25",
            "--rows",
            str(rows),
            "--plan",
            str(plan),
        ]
    )
    shards = [s["shard"] for s in json.loads(plan.read_text())["shards"]]
    assert shards == ["s00000", "s00001"]
    outs, qcs = [], []
    for s in shards:
        outs.append(str(tmp_path / f"{s}.h5"))
        qcs.append(str(tmp_path / f"{s}.qc.tsv"))
        main(
            [
                "shard",
                "--rows",
                str(rows),
                "--plan",
                str(plan),
                "--shard",
                s,
                "--size",
                "24",
                "--out",
                outs[-1],
                "--qc",
                qcs[-1],
            ]
        )
    main(
        [
            "index",
            "--rows",
            str(rows),
            "--qc",
            *qcs,
            "--shards",
            *outs,
            "--manifest",
            str(tmp_path / "manifest.tsv"),
            "--index",
            str(tmp_path / "index.json"),
        ]
    )
    manifest = pd.read_csv(tmp_path / "manifest.tsv", sep="\t")
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(manifest) == 40
    assert sum(s["images"] for s in index["shards"]) == (manifest["status"] == "accepted").sum()
    main(["split", "--manifest", str(tmp_path / "manifest.tsv"), "--out", str(tmp_path / "s.tsv")])
    assert len(pd.read_csv(tmp_path / "s.tsv", sep="\t")) == index["summary"]["accepted"]
