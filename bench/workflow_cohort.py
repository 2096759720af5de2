"""A small synthetic cohort made by the workflow itself, for the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


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
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--profile",
            str(REPO / "profiles/local"),
            "--cores",
            "2",
            "results/cohorts/c/index.json",
            "results/cohorts/c/split.tsv",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    index = work / "results/cohorts/c/index.json"
    shards = [str(work / s["path"]) for s in json.loads(index.read_text())["shards"]]
    return shards, index, work / "results/cohorts/c/split.tsv"
