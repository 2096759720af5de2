"""The CLI: steps chain on files; errors are messages, not tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
from conftest import REPO

from boneage.cli import main
from boneage.shards import read_shard


def test_check_config_cli(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text((REPO / "config.yaml").read_text().replace("size: 256", "size: -3"))
    proc = subprocess.run(
        [sys.executable, "-m", "boneage.cli", "check-config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "shards.size" in proc.stderr and "Traceback" not in proc.stderr


def _manifest(tmp_path, tiny_cohort, shard_size: int = 25):
    rows, shard_list = tmp_path / "rows.tsv", tmp_path / "shards.json"
    spec = {
        "source": "synthetic",
        "csv": str(tiny_cohort / "labels.csv"),
        "images": str(tiny_cohort / "images"),
        "truth": str(tiny_cohort / "truth.csv"),
    }
    main(
        ["manifest", "--spec", json.dumps(spec), "--shard-size", str(shard_size)]
        + ["--rows", str(rows), "--shard-list", str(shard_list)]
    )
    return rows, shard_list


def _shard(rows, shard_list, shard: str, out, qc) -> None:
    main(
        ["shard", "--rows", str(rows), "--shard-list", str(shard_list), "--shard", shard]
        + ["--size", "24", "--out", str(out), "--qc", str(qc)]
    )


def test_a_shard_job_reads_only_its_rows(tmp_path, tiny_cohort):
    """At a million rows the table is about 140 MB: a shard job reads its span of it, not all."""
    rows, shard_list = _manifest(tmp_path, tiny_cohort, shard_size=10)
    shards = json.loads(shard_list.read_text())["shards"]
    spans = [s["span"] for s in shards]
    assert spans[0][0] == len(rows.read_bytes().split(b"\n")[0]) + 1
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    _shard(rows, shard_list, "s00002", tmp_path / "a.h5", tmp_path / "a.tsv")
    # Every byte outside s00002's span made unreadable: the job does not notice.
    data = bytearray(rows.read_bytes())
    start, end = spans[2]
    header = len(data.split(b"\n")[0]) + 1
    data[header:start] = b"#" * (start - header)
    data[end:] = b"#" * (len(data) - end)
    rows.write_bytes(bytes(data))
    _shard(rows, shard_list, "s00002", tmp_path / "b.h5", tmp_path / "b.tsv")
    a, b = read_shard(tmp_path / "a.h5"), read_shard(tmp_path / "b.h5")
    assert (a.images == b.images).all() and list(a.ids) == list(b.ids) and len(a.ids) > 0
    assert (tmp_path / "a.tsv").read_text() == (tmp_path / "b.tsv").read_text()
    # A rows table that does not match the shard list is named, not misread.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "boneage.cli",
            "shard",
            "--rows",
            str(rows),
            "--shard-list",
            str(shard_list),
        ]
        + ["--shard", "s00001", "--size", "24", "--out", str(tmp_path / "c.h5")]
        + ["--qc", str(tmp_path / "c.tsv")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "rerun the manifest" in proc.stderr, proc.stderr[-2000:]


def test_ingest_steps_chain(tmp_path, tiny_cohort):
    rows, shard_list = _manifest(tmp_path, tiny_cohort)
    shards = [s["shard"] for s in json.loads(shard_list.read_text())["shards"]]
    assert shards == ["s00000", "s00001"]
    outs, qcs = [], []
    for s in shards:
        outs.append(str(tmp_path / f"{s}.h5"))
        qcs.append(str(tmp_path / f"{s}.qc.tsv"))
        _shard(rows, shard_list, s, outs[-1], qcs[-1])
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


def test_help_lists_every_step_the_rules_call():
    """`boneage --help` (docs/workflow.md) names each subcommand a rule's shell calls."""
    proc = subprocess.run(
        [sys.executable, "-m", "boneage.cli", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    rules = "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    called = set(re.findall(r"boneage ([a-z-]+) ", rules))
    assert {"manifest", "shard", "train", "predict", "report"} <= called
    assert not [step for step in called if step not in proc.stdout], proc.stdout
