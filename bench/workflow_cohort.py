"""A small synthetic cohort made by the workflow itself, for the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from boneage.workflow_run import snakemake, tail


def workflow_cohort(
    work: Path, n: int = 400, shard_size: int = 128, image_size: int = 128
) -> tuple[list[str], Path, Path]:
    """Run the workflow up to a cohort's index and split; return shard paths, index, split."""
    cfg = {
        "cohorts": {"c": {"source": "synthetic", "n": n, "seed": 9}},
        "train_cohorts": ["c"],
        "image_size": image_size,
        "shards": {"size": shard_size},
        "experiments": {"small_cnn": {}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "results/cohorts/c/index.json", "results/cohorts/c/split.tsv")
    if proc.returncode:
        raise SystemExit(f"the workflow failed in {work}:\n{tail(proc)}")
    index = work / "results/cohorts/c/index.json"
    shards = [str(work / s["path"]) for s in json.loads(index.read_text())["shards"]]
    return shards, index, work / "results/cohorts/c/split.tsv"
