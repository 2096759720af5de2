"""A GPU cluster's request works: `snakemake --profile slurm` on two Slurm nodes that
declare 2 GPUs each as GRES (tests/localslurm.py; stand-in device files, no GPU).

Slurm accepts what the workflow asks for, and what it gives is what each job uses:
training runs nodes x GPUs ranks, each on its own GPU; a predict job takes one
GPU; the other steps take none. TensorFlow itself finds no GPU behind the
stand-ins and computes on CPU, so the numbers are those of a CPU run.
"""

from __future__ import annotations

import json
import re

import localslurm
import pytest
import yaml
from harness import TINY

pytestmark = [
    pytest.mark.slurm2,
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.mpi,
    pytest.mark.heavy,
]

NODES, GPUS, NODE_CPUS, NODE_MEM_MB = 2, 2, 4, 6144
#: One rank per GPU on every node (on the command line: it overrides the profile's ranks).
RANKS = ["--config", f"distributed={{ranks: {NODES * GPUS}, nodes: {NODES}}}"]
#: The rules that run a model (a GPU each; training one a rank).
GPU_RULES = {"model_footprint", "train_model", "calibrate", "predict", "saliency"}


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    """The tiny workflow with ranks = nodes x GPUs through the Slurm profile, queue watched."""
    if problem := localslurm.two_node_problem():
        pytest.fail(problem)
    root = tmp_path_factory.mktemp("slurm-gpus")
    work = tmp_path_factory.mktemp("gpu-run")
    (work / "config.yaml").write_text(yaml.safe_dump(TINY))
    shape = {"cpus": NODE_CPUS, "mem_mb": NODE_MEM_MB, "nodes": NODES, "gpus": GPUS}
    with localslurm.running(root, **shape) as env:
        return work, localslurm.watched(work, env, *RANKS)


def jobs_of(samples: list[list[localslurm.Queued]], rule: str) -> list[localslurm.Queued]:
    """Every sample of a running job of ``rule``."""
    return [q for sample in samples for q in sample if q.rule == rule and q.state == "R"]


def test_training_runs_nodes_times_gpus_ranks_each_on_its_own_gpu(gpu_run):
    work, samples = gpu_run
    summary = json.loads((work / "results/models/quick/train.json").read_text())
    assert summary["world_size"] == NODES * GPUS == 4
    # Each rank took a GPU Slurm gave its node, and no two ranks of a node the same one.
    assert sorted(summary["rank_gpus"]) == ["node1:0", "node1:1", "node2:0", "node2:1"]
    assert len(set(summary["rank_weights"])) == 1  # still one model on every rank
    # What Slurm was asked for: both nodes, GPUs per node as GRES, the cores of the ranks.
    train = jobs_of(samples, "train_model")
    assert train, "the train job was never seen running"
    assert {(q.nodes, q.gres) for q in train} == {(NODES, f"gres:gpu:{GPUS}")}
    # srun gets -c (Slurm 22.05 to 23.02 do not pass the job's --cpus-per-task on).
    launch = re.search(
        r"srun --mpi=pmix -n (\d+) -c (\d+)", (work / "logs/train/quick.log").read_text()
    )
    assert launch, "no srun line in the train log"
    ranks, cpus = map(int, launch.groups())
    assert ranks == NODES * GPUS and {q.cpus for q in train} == {ranks * cpus}


def test_a_predict_job_takes_one_gpu_and_bookkeeping_none(gpu_run):
    work, samples = gpu_run
    predict = jobs_of(samples, "predict")
    assert predict, "no predict job was seen running"
    assert {q.gres for q in predict} == {"gres:gpu:1"}
    for sample in samples:  # never more predict jobs on a node than it has GPUs
        for node in ("node1", "node2"):
            assert sum(q.rule == "predict" and q.node == node for q in sample) <= GPUS
    logs = sorted((work / "logs/predict").rglob("*.log"))
    assert logs
    for log in logs:  # each job used the one GPU Slurm gave it
        given = re.findall(r"GPU\(s\) (\S+) given by Slurm", log.read_text())
        assert len(given) == 1 and given[0] in {"0", "1"}, log
    others = {q.rule: q.gres for sample in samples for q in sample if q.rule not in GPU_RULES}
    assert others and set(others.values()) == {""}, others
