"""Grouped prediction: MPI ranks share a group of shards; the table equals per-shard jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from boneage.dispatch import run_group


class _OneRank:
    """A communicator of one rank (what mpi4py gives a process started on its own)."""

    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return 0

    def Get_size(self):  # noqa: N802
        return 1

    def gather(self, obj, root=0):
        return [obj]


def test_one_rank_predicts_every_shard_in_order():
    seen = []

    def predict(shard):
        seen.append(shard)
        return pd.DataFrame({"shard": [shard] * 2})

    table = run_group(["a", "b", "c"], predict, comm=_OneRank(), log=lambda _: None)
    assert seen == ["a", "b", "c"] and list(table["shard"]) == ["a", "a", "b", "b", "c", "c"]


@pytest.mark.slow
@pytest.mark.mpi
def test_mpi_ranks_share_the_shards_and_match_per_shard_predictions(
    tiny_shards, tiny_model, tmp_path
):
    from boneage.predict import predict_shard

    shards, _ = tiny_shards
    out = tmp_path / "group.tsv"
    bindir = Path(sys.executable).parent
    proc = subprocess.run(
        [
            str(bindir / "boneage"),
            "launch",
            "--mpi",
            "--ranks",
            "2",
            "--",
            str(bindir / "boneage"),
            "predict-group",
            "--model",
            str(tiny_model),
            "--shards",
            *shards,
            "--out",
            str(out),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "mpirun" in proc.stdout and "rank 1/2" in proc.stdout and "rank 0/2" in proc.stdout
    group = pd.read_csv(out, sep="\t")
    single = pd.concat([predict_shard(tiny_model, s) for s in shards], ignore_index=True)
    single.to_csv(tmp_path / "single.tsv", sep="\t", index=False)
    pd.testing.assert_frame_equal(group, pd.read_csv(tmp_path / "single.tsv", sep="\t"))
