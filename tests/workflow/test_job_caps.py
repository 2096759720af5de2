"""A cohort of many shards under a per-user job cap: the settings that keep the queue small.

A 3,000-shard cohort (one image a shard, hard links to one film) is planned
with `snakemake -n --profile slurm`: per-shard predict is one job a shard;
grouped predict (`predict.mode: grouped`) is one MPI job per `group_size`
shards; and the profile's `jobs:` bounds how many jobs are in the queue at
once whatever the cohort's size.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from boneage.workflow_run import REPO, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

SHARDS = 3000
CAP = 5000  # a site's queue limit per user, as many clusters set it


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Path:
    """A cohort of SHARDS one-image shards whose manifest checkpoint has run."""
    work = tmp_path_factory.mktemp("caps")
    images = work / "cohort/images"
    images.mkdir(parents=True)
    Image.new("L", (64, 80), 128).save(images / "1.png")
    for i in range(2, SHARDS + 1):
        os.link(images / "1.png", images / f"{i}.png")
    rows = "\n".join(
        f"{i},{60 + i % 150},{'True' if i % 2 else 'False'}" for i in range(1, SHARDS + 1)
    )
    (work / "cohort/labels.csv").write_text("id,boneage,male\n" + rows + "\n")
    config = {
        "cohorts": {
            "big": {"source": "rsna", "csv": "cohort/labels.csv", "images": "cohort/images"}
        },
        "train_cohorts": ["big"],
        "shards": {"size": 1},
        "cluster": {"node_mem": "64G", "node_cores": 16},
        "experiments": {"small_cnn": {}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "results/cohorts/big/shards.json")  # the checkpoint
    assert done.returncode == 0, done.stderr[-3000:]
    return work


def _jobs(work: Path, *config: str) -> dict[str, int]:
    extra = ["--config", *config] if config else []
    dry = snakemake(work, "-n", *extra, profile="slurm")
    assert dry.returncode == 0, dry.stderr[-3000:]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, re.M)}


def test_grouped_predict_and_jobs_keep_the_queue_under_a_cap(planned):
    per_shard = _jobs(planned)
    assert per_shard["shard"] == SHARDS and per_shard["predict"] == SHARDS
    grouped = _jobs(planned, "predict={mode: grouped, group_size: 16}")
    assert grouped["shard"] == SHARDS
    assert grouped["predict_group"] == math.ceil(SHARDS / 16) and "predict" not in grouped
    # At most `jobs` are submitted and unfinished at any time (observed on a real Slurm:
    # test_slurm.py): far under a 5,000 cap, for this cohort and for a million images alike.
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["jobs"] <= CAP < per_shard["total"] + 10_000
