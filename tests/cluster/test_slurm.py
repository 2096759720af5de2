"""`snakemake --profile slurm` on a real one-node Slurm (tests/localslurm.py).

One module-wide run of the tiny workflow through sbatch, then checks on it:
job ids in the logs, 2 Horovod ranks via srun, predict jobs sized by the
calibration, predictions equal to a local run's, the grouped MPI mode, job
arrays, and a retry with more memory after an out-of-memory kill.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import localslurm
import pandas as pd
import pytest
import yaml
from harness import TINY, copy_run

from boneage.workflow_run import snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.mpi, pytest.mark.heavy]

NODE_MEM_MB = 8192
PREDICTIONS = "results/predictions/quick/tiny.tsv"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running local Slurm: the environment that reaches it."""
    if localslurm.missing():
        pytest.fail(
            f"Slurm tests need {', '.join(localslurm.missing())}: "
            "run scripts/setup.sh --test (it installs slurm-wlm and munge)"
        )
    with localslurm.running(tmp_path_factory.mktemp("slurm"), mem_mb=NODE_MEM_MB) as env:
        yield env


def _config(**extra) -> dict:
    """The tiny workflow; the node it is planned for comes from sinfo (no `cluster:` here)."""
    return {**TINY, **extra}


def _asked_mem_mb(work: Path, rule: str) -> list[int]:
    """mem_mb of each submission of ``rule``, from the job's own Slurm log."""
    asked = []
    for log in sorted((work / "logs/slurm" / f"rule_{rule}").rglob("*.log")):
        m = re.search(r"^\s+resources: .*?\bmem_mb=(\d+)", log.read_text(), re.M)
        if m:
            asked.append(int(m.group(1)))
    return asked


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The tiny workflow, run once through `snakemake --profile slurm`."""
    work = tmp_path_factory.mktemp("slurmrun")
    (work / "config.yaml").write_text(yaml.safe_dump(_config()))
    proc = snakemake(work, profile="slurm", env=slurm)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    return work, proc.stdout + proc.stderr


def test_every_heavy_job_goes_through_sbatch(slurm_run):
    work, out = slurm_run
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out)
    # synth, manifest, 3 x shard, model_footprint, train_model, calibrate, 3 x predict,
    # saliency; the tiny steps are localrules (no sbatch, no status poll).
    assert len({job for job, _ in submitted}) == 12
    # Each job's Slurm log is named by its job id (profile: keep successful logs).
    ids = {p.stem for p in (work / "logs/slurm").rglob("*.log")}
    assert {sid for _, sid in submitted} <= ids
    for rule in (
        "synth",
        "manifest",
        "shard",
        "model_footprint",
        "train_model",
        "calibrate",
        "predict",
        "saliency",
    ):
        assert (work / "logs/slurm" / f"rule_{rule}").is_dir(), rule
    for rule in ("resolved_config", "index", "split", "aggregate", "report"):
        assert not (work / "logs/slurm" / f"rule_{rule}").exists(), rule
        assert f"localrule {rule}:" in out, rule
    # Planned for the Slurm node as sinfo reports it: only the profile changed.
    html = (work / "results/report.html").read_text()
    assert f"nodes of {NODE_MEM_MB} MB and {os.cpu_count()} cores" in html
    assert "Executor slurm" in html


def test_train_runs_two_horovod_ranks_via_srun(slurm_run):
    work, _ = slurm_run
    log = (work / "logs/train/quick.log").read_text()
    assert "launch: srun --mpi=pmix -n 2" in log
    summary = json.loads((work / "results/models/quick/train.json").read_text())
    assert summary["world_size"] == 2


def test_predict_jobs_ask_for_the_calibrated_memory(slurm_run):
    from boneage.memory.node import JOB_OVERHEAD_MB

    work, _ = slurm_run
    cal = json.loads((work / "results/models/quick/calibration.json").read_text())
    assert 300 < cal["peak_rss_mb"] < 2000 and cal["images"] > 0
    expected = int(cal["peak_rss_mb"] * 1.2) + JOB_OVERHEAD_MB
    assert _asked_mem_mb(work, "predict") == [expected] * 3


def test_predictions_equal_a_local_run(slurm_run, tmp_path):
    work, _ = slurm_run
    local = copy_run(work, tmp_path / "local")
    proc = snakemake(local, PREDICTIONS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rule train_model" not in proc.stdout + proc.stderr  # same model, only predictions
    pd.testing.assert_frame_equal(
        pd.read_csv(local / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_grouped_mode_predicts_the_same_with_mpi_ranks(slurm, slurm_run, tmp_path):
    work, _ = slurm_run
    grouped = copy_run(work, tmp_path / "grouped")
    (grouped / "config.yaml").write_text(
        yaml.safe_dump(_config(predict={"mode": "grouped", "group_size": 2}))
    )
    proc = snakemake(grouped, PREDICTIONS, profile="slurm", env=slurm)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert len(_asked_mem_mb(grouped, "predict_group")) == 2  # 3 shards in groups of 2
    log = (grouped / "logs/predict/quick/tiny/groups/g0000.log").read_text()
    assert "launch: srun --mpi=pmix -n 2" in log
    assert {"rank 0/2", "rank 1/2"} <= set(re.findall(r"rank \d/2", log))
    pd.testing.assert_frame_equal(
        pd.read_csv(grouped / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_grouped_mode_with_a_one_process_plan(slurm, slurm_run, tmp_path):
    """Nodes that fit one predict process: a grouped job is a plain job (no MPI of 1 task)."""
    work, _ = slurm_run
    single = copy_run(work, tmp_path / "single")
    cal = json.loads((work / "results/models/quick/calibration.json").read_text())
    node_mb = 2048 + int(cal["peak_rss_mb"] * 1.2) + 400  # reserve + one process, not two
    (single / "config.yaml").write_text(
        yaml.safe_dump(
            _config(
                predict={"mode": "grouped", "group_size": 2},
                cluster={"node_mem": f"{node_mb}M", "node_cores": 2},
            )
        )
    )
    proc = snakemake(single, PREDICTIONS, profile="slurm", env=slurm)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    log = (single / "logs/predict/quick/tiny/groups/g0000.log").read_text()
    assert "launch: boneage predict-group" in log  # one rank, no srun
    pd.testing.assert_frame_equal(
        pd.read_csv(single / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_job_arrays_for_many_shards(slurm, slurm_run, tmp_path):
    work, _ = slurm_run
    arrays = copy_run(work, tmp_path / "arrays")
    proc = snakemake(
        arrays, PREDICTIONS, "--slurm-array-jobs", "predict", profile="slurm", env=slurm
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert re.search(r"array", proc.stdout + proc.stderr, re.I)
    assert list((arrays / "logs/slurm/rule_predict").rglob("*_*.log"))  # %A_%a: one array job
    pd.testing.assert_frame_equal(
        pd.read_csv(arrays / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_out_of_memory_kill_is_retried_with_more_memory_under_the_job_cap(
    slurm, slurm_run, tmp_path
):
    work, _ = slurm_run
    oom = copy_run(work, tmp_path / "oom")
    # A calibration that understates the peak: first attempts get too little memory.
    cal_path = oom / "results/models/quick/calibration.json"
    cal = json.loads(cal_path.read_text())
    cal_path.write_text(json.dumps({**cal, "peak_rss_mb": 40.0}))
    # `jobs` (the profile's cap on jobs in the queue at once), here 2, as squeue sees it.
    watcher = localslurm.QueueWatcher(slurm)
    watcher.start()
    try:
        proc = snakemake(oom, PREDICTIONS, "--jobs", "2", profile="slurm", env=slurm)
    finally:
        queued = [len(sample) for sample in watcher.stop()]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    assert max(queued) == 2, queued  # 3 predict jobs and their retries, never 3 at once
    asked = sorted(set(_asked_mem_mb(oom, "predict")))
    assert len(asked) >= 2 and asked[1] == 2 * asked[0], asked  # attempt x measured
    slurm_logs = "".join(p.read_text() for p in (oom / "logs/slurm/rule_predict").rglob("*.log"))
    assert "exceeded memory limit" in slurm_logs
    pd.testing.assert_frame_equal(
        pd.read_csv(oom / PREDICTIONS, sep="\t"), pd.read_csv(work / PREDICTIONS, sep="\t")
    )


def test_node_shape_comes_from_sinfo(slurm):
    from boneage.memory.node import Node, slurm_node

    assert slurm_node() == (NODE_MEM_MB, os.cpu_count())
    node = Node.from_config({"node_cores": 24}, slurm=True)  # config wins where it is set
    assert (node.mem_mb, node.cores) == (NODE_MEM_MB, 24)
