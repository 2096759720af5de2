"""boneage.plan: what the rules ask of a validated config (no Snakemake involved)."""

from __future__ import annotations

import json
import os

import pytest

from boneage.config import validate
from boneage.memory.node import Node
from boneage.plan import RunPlan


def _plan(tmp_path, **over) -> RunPlan:
    cfg = {
        "cohorts": {
            "synth": {"source": "synthetic", "n": 20},
            "site": {"source": "rsna", "csv": str(tmp_path / "{site}/labels.csv"), "images": "x"},
        },
        "train_cohorts": ["synth"],
        "experiments": {"e": {"epochs": 1}},
        **over,
    }
    node = Node(mem_mb=16_000, cores=8, reserve_mb=2_000, margin=0.2)
    return RunPlan(validate(cfg), lambda: node)


def test_sources_synthetic_paths_and_wildcard_like_paths(tmp_path):
    plan = _plan(tmp_path)
    assert plan.cohort_spec("synth")["csv"] == "results/sources/synth/labels.csv"
    assert set(plan.source_inputs("synth")) == {"csv", "truth", "images"}
    # a path with braces is not an input (Snakemake would read a wildcard) but is stamped
    assert plan.source_inputs("site") == {}
    labels = tmp_path / "{site}/labels.csv"
    labels.parent.mkdir()
    labels.write_text("id\n")
    part = plan.config_part("cohorts/site", "private")
    assert list(part["source_stamps"]) == [str(labels)]
    assert plan.config_part("experiments/e")["image_size"] == 128


def test_groups_and_prediction_parts(tmp_path):
    ids = [f"s{i:05d}" for i in range(5)]
    per_shard = _plan(tmp_path)
    assert per_shard.prediction_parts(ids) == ids
    grouped = _plan(tmp_path, predict={"mode": "grouped", "group_size": 2})
    assert grouped.shard_groups(ids) == {
        "g0000": ids[:2],
        "g0001": ids[2:4],
        "g0002": ids[4:],
    }
    assert grouped.prediction_parts(ids) == ["groups/g0000", "groups/g0001", "groups/g0002"]


@pytest.mark.parametrize("ranks,launcher", [(1, ""), (4, "mpiexec")])
def test_train_ranks_launcher_and_cores(tmp_path, ranks, launcher):
    plan = _plan(tmp_path, distributed={"ranks": ranks}, cluster={"mpi": "mpiexec"})
    assert plan.train_ranks() == ranks
    assert plan.launcher(plan.train_ranks()) == launcher
    assert plan.train_cpus_per_task() == 8 // ranks


def test_train_over_nodes_sizes_each_node_for_its_ranks(tmp_path):
    one = _plan(tmp_path, distributed={"ranks": 4})
    two = _plan(tmp_path, distributed={"ranks": 4, "nodes": 2})
    assert (one.train_nodes(), two.train_nodes()) == (1, 2)
    assert (one.train_cpus_per_task(), two.train_cpus_per_task()) == (2, 4)
    mem_one = one.train_mem_mb("e", str(tmp_path / "none.json"), [])
    mem_two = two.train_mem_mb("e", str(tmp_path / "none.json"), [])
    assert mem_two * 2 == mem_one  # per node: half the ranks
    assert _plan(tmp_path, distributed={"ranks": 2, "nodes": 4}).train_nodes() == 2


def test_predict_plan_from_a_measurement_and_cached_per_file_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = _plan(tmp_path)
    assert plan.predict_inputs() == {"calibration": "results/models/{experiment}/calibration.json"}
    default = plan.predict_plan("e")  # nothing measured or profiled yet: the coarse figure
    calibration = tmp_path / "results/models/e/calibration.json"
    calibration.parent.mkdir(parents=True)
    calibration.write_text(json.dumps({"peak_rss_mb": 2_000}))
    first = plan.predict_plan("e")
    # (16000 - 2000) MB / (2000 x 1.2 + job overhead) -> 5 processes of 8 cores
    assert first.processes == 5 and first.proc_mem_mb > 2_400
    assert first.threads == 1
    # The calibration job itself is sized without its own (earlier) measurement.
    assert plan.predict_plan("e", measured=False) == default
    calibration.write_text(json.dumps({"peak_rss_mb": 5_000}))
    os.utime(calibration, ns=(0, 1))  # a new file version
    assert plan.predict_plan("e").processes == 2
    uncalibrated = _plan(tmp_path, predict={"calibrate": False})
    assert uncalibrated.predict_inputs() == {
        "footprint": "results/models/{experiment}/footprint.json"
    }


def test_predict_args_and_run_info(tmp_path):
    plan = _plan(tmp_path, aggregate={"tta": True}, predict={"batch_size": 16})
    assert plan.predict_args() == "--batch-size 16 --tta"
    assert set(json.loads(plan.run_info())["mem_mb"]) == {"shard", "train", "predict"}


def test_table_memory_grows_with_the_cohorts_images(tmp_path, monkeypatch):
    plan = _plan(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = plan.table_mem_mb(["synth"])  # no manifest yet: the base figure
    cohort = tmp_path / "results/cohorts/synth"
    cohort.mkdir(parents=True)
    rows = list(range(1, 250_001))
    shards = [{"shard": f"s{i}", "rows": rows[i::4], "digest": "x"} for i in range(4)]
    (cohort / "shards.json").write_text(json.dumps({"shards": shards}))
    assert plan.cohort_images("synth") == 250_000
    one = plan.table_mem_mb(["synth"])
    assert one > before + 100  # about half a KB per image row
    assert plan.table_mem_mb(["synth"], tables=3) > 2 * one - before


def test_gpu_nodes_give_each_model_step_its_gpus_and_the_rest_none(tmp_path):
    """Nodes of 4 GPUs, 8 ranks over 2 nodes: a training job asks gpu:4 per node (one per
    rank), every other model step gpu:1, the bookkeeping steps nothing; without GPUs, nothing."""
    cfg = {
        "cohorts": {"synth": {"source": "synthetic", "n": 20}},
        "train_cohorts": ["synth"],
        "experiments": {"e": {"epochs": 1}},
        "distributed": {"ranks": 8, "nodes": 2},
    }
    gpu_node = Node(mem_mb=256_000, cores=32, gpus=4)
    plan = RunPlan(validate(cfg), lambda: gpu_node)
    assert plan.step_gpus("train") == 4
    assert [plan.step_gpus(s) for s in ("footprint", "calibrate", "predict", "saliency")] == [1] * 4
    assert plan.step_gpus("shard") == plan.step_gpus("report") == 0
    cpu = RunPlan(validate(cfg), lambda: Node(mem_mb=256_000, cores=32))
    assert cpu.step_gpus("train") == cpu.step_gpus("predict") == 0


def test_predict_runs_one_process_per_gpu_and_gres_strings_are_read():
    from boneage.memory.node import gres_gpus, plan_node

    # 256 GB and 32 cores fit 32 processes of 6 GB; 4 GPUs: 4 processes of 8 threads.
    plan = plan_node(256_000, 32, 6_000, reserve_mb=0, node_gpus=4)
    assert (plan.processes, plan.threads) == (4, 8)
    assert plan_node(256_000, 32, 6_000, reserve_mb=0).processes == 32
    assert gres_gpus("gpu:a100:4(S:0-1),shard:8") == 4
    assert gres_gpus("gpu:8") == 8 and gres_gpus("(null)") == 0 and gres_gpus("shard:2") == 0
