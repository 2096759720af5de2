"""`snakemake --profile slurm` on two Slurm nodes: each its own host (tests/localslurm.py).

Two slurmd, each in its own network, UTS and mount namespace (hostnames
node1 and node2, addresses on a private bridge), share this machine's file
system as cluster nodes share theirs. One module-wide run of a 12-shard
synthetic cohort, with a 4-rank training job over both nodes, while a watcher
records what ``squeue`` says runs where; then checks on it: ranks per host and
their weights, predict jobs packed per node as the node plan says, grouped
predict on both nodes, and a node that dies mid-run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import localslurm
import numpy as np
import pandas as pd
import pytest
import yaml
from harness import TINY, copy_run

from boneage.workflow_run import REPO, snakemake_cmd, tool_env

pytestmark = [
    pytest.mark.slurm2,
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.mpi,
    pytest.mark.heavy,
]

# 8 cores a node: more than its memory fits predict processes (threads must fill them).
NODE_CPUS, NODE_MEM_MB = 8, 4096
PREDICTIONS = "results/predictions/quick/tiny.tsv"
TRAIN_4_RANKS = ["--config", "distributed={ranks: 4, nodes: 2}"]
CONFIG = {
    **TINY,
    "cohorts": {"tiny": {"source": "synthetic", "n": 96, "seed": 3, "nonhand_share": 0.1}},
    "shards": {"format": "zarr", "size": 8},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two running Slurm nodes of NODE_CPUS cores and NODE_MEM_MB each: (root, environment)."""
    if problem := localslurm.two_node_problem():
        pytest.fail(problem)
    root = tmp_path_factory.mktemp("slurm2")
    with localslurm.running(root, cpus=NODE_CPUS, mem_mb=NODE_MEM_MB, nodes=2) as env:
        yield root, env


def per_node(samples: list[list[localslurm.Queued]], rule: str) -> dict[str, list[list]]:
    """For each node, the running jobs of ``rule`` on it in every sample."""
    seen: dict[str, list[list]] = defaultdict(list)
    for sample in samples:
        for node in ("node1", "node2"):
            seen[node].append([q for q in sample if q.rule == rule and q.node == node])
    return seen


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    """The 12-shard workflow through `snakemake --profile slurm` on both nodes, watched."""
    _, env = cluster
    work = tmp_path_factory.mktemp("run2")
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return work, localslurm.watched(work, env, *TRAIN_4_RANKS)


def _plan(work: Path):
    """The predict node plan the run made (from its calibration and the nodes' shape)."""
    from boneage.memory.node import plan_node, predict_memory_mb

    proc_mb, source = predict_memory_mb(
        None, str(work / "results/models/quick/calibration.json"), 32, 8
    )
    assert source == "measured"
    return plan_node(NODE_MEM_MB, NODE_CPUS, proc_mb, reserve_mb=0)


def test_training_ranks_span_both_nodes_with_equal_weights(run):
    work, _ = run
    summary = json.loads((work / "results/models/quick/train.json").read_text())
    assert summary["world_size"] == 4
    assert sorted(summary["hosts"]) == ["node1", "node1", "node2", "node2"]
    assert len(set(summary["rank_weights"])) == 1  # bit for bit on all four ranks
    assert "launch: srun --mpi=pmix -n 4" in (work / "logs/train/quick.log").read_text()


def test_horovod_over_two_nodes_matches_one_process(cluster, tmp_path):
    """One step on the global batch: 4 ranks over 2 hosts, and one process, agree."""
    _, env = cluster
    env = {**env, "PYTHONPATH": str(REPO)}
    script = str(REPO / "tests/dist_step.py")
    single = subprocess.run(
        [sys.executable, script, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert single.returncode == 0, single.stderr[-2000:]
    dist = subprocess.run(
        ["srun", "--mpi=pmix", "-N", "2", "-n", "4", sys.executable, script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert dist.returncode == 0, dist.stdout[-2000:] + dist.stderr[-2000:]

    def weights(name: str) -> list[np.ndarray]:
        with np.load(tmp_path / name) as f:
            return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]

    one = weights("weights_rank0_of1.npz")
    ranks = [weights(f"weights_rank{r}_of4.npz") for r in range(4)]
    for other in ranks[1:]:
        for a, b in zip(ranks[0], other):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(ranks[0], one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_predict_jobs_pack_by_memory_and_threads_fill_the_cores(run):
    """Worked by hand from what the jobs asked: a node of NODE_MEM_MB holds
    floor(NODE_MEM_MB / asked) predict jobs at once (Slurm packs by memory), and
    each job has floor(NODE_CPUS / that) cores, so no core stays idle for lack
    of a process. Here (520 MB measured, 924 MB asked): 4 jobs of 2 cores a node."""
    work, samples = run
    jobs = [q for sample in samples for q in sample if q.rule == "predict"]
    [asked] = {q.mem_mb for q in jobs}
    [cores] = {q.cpus for q in jobs}
    fits = NODE_MEM_MB // asked
    assert 2 <= fits < NODE_CPUS  # memory, not cores, limits the processes on a node ...
    assert cores == NODE_CPUS // fits >= 2  # ... and threads fill the cores it leaves
    for node, seen in per_node(samples, "predict").items():
        assert max(len(running) for running in seen) == fits, (node, asked, cores)
    logs = "".join(p.read_text() for p in (work / "logs/slurm").rglob("*.log"))
    assert "exceeded memory limit" not in logs and "oom" not in logs.lower()
    threads = {int(t) for t in re.findall(r" on (\d+) thread", _predict_logs(work))}
    assert threads == {cores}, threads  # TensorFlow runs as many threads as the job has cores


def _predict_logs(work: Path) -> str:
    return "".join(p.read_text() for p in (work / "logs/predict/quick/tiny").glob("s*.log"))


def test_grouped_predict_runs_on_both_nodes_and_agrees(cluster, run, tmp_path):
    _, env = cluster
    work, _ = run
    grouped = copy_run(work, tmp_path / "grouped")
    config = {**CONFIG, "predict": {"mode": "grouped", "group_size": 2}}
    (grouped / "config.yaml").write_text(yaml.safe_dump(config))
    samples = localslurm.watched(grouped, env, PREDICTIONS, *TRAIN_4_RANKS)
    seen = per_node(samples, "predict_group")
    assert all(max(len(running) for running in seen[n]) >= 1 for n in ("node1", "node2")), seen
    plan = _plan(work)
    log = next((grouped / "logs/predict/quick/tiny/groups").glob("*.log")).read_text()
    assert f"srun --mpi=pmix -n {plan.processes}" in log
    pd.testing.assert_frame_equal(
        pd.read_csv(grouped / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_a_node_dies_and_the_run_finishes_on_the_other(cluster, run, tmp_path):
    """node2 dies with predict jobs on it; retries finish on node1, with the same predictions."""
    root, env = cluster
    work, _ = run
    again = copy_run(work, tmp_path / "again")
    with subprocess.Popen(
        [*snakemake_cmd("slurm"), PREDICTIONS, *TRAIN_4_RANKS],
        cwd=again,
        env=tool_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["squeue", "-h", "-t", "R", "-w", "node2", "-o", "%k"],
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            if "rule_predict" in out:
                break
            time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail("no predict job ran on node2")
        time.sleep(2)  # mid-job: the film loop has started
        localslurm.kill_node(root, "node2")
        output, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, output[-6000:]
    state = subprocess.run(
        ["sinfo", "-h", "-n", "node2", "-o", "%T"], capture_output=True, text=True, env=env
    ).stdout
    assert "down" in state, state
    assert "failed due to a node failure" in output  # NODE_FAIL, seen by the Slurm plugin
    assert "Error in rule predict" in output  # ... and retried by Snakemake
    pd.testing.assert_frame_equal(
        pd.read_csv(again / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )
    partial = [p for p in (again / "results").rglob(".*") if p.name != ".snakemake_timestamp"]
    assert partial == [], partial
