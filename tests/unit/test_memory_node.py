"""Node planning: memory decides the processes, threads fill the idle cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from boneage.memory.node import coarse_mem_mb, parse_size_mb, plan_node


def test_cohort_study_example():
    plan = plan_node(parse_size_mb("64G"), 24, parse_size_mb("11G"))
    assert (plan.processes, plan.threads, plan.busy_cores) == (5, 4, 20)


@pytest.mark.parametrize(
    "mem,cores,proc,expected",
    [
        (65536, 8, 1024, (8, 1)),  # memory is plenty: one process per core
        (16384, 16, 4096, (3, 5)),  # (16 - 2) // 4 = 3 processes, 16 // 3 = 5 threads
        (8192, 2, 6144, (1, 2)),
    ],
)
def test_plans(mem, cores, proc, expected):
    plan = plan_node(mem, cores, proc)
    assert (plan.processes, plan.threads) == expected
    assert plan.busy_cores <= cores and plan.processes * proc <= mem - 2048


def test_process_too_big_for_node():
    with pytest.raises(ValueError, match="one process needs"):
        plan_node(8192, 8, 16384)


@pytest.mark.parametrize(
    "text,mb",
    [
        ("64G", 65536),
        ("11GB", 11264),
        ("512M", 512),
        ("2048", 2048),
        ("1.5G", 1536),
        ("1T", 1048576),
    ],
)
def test_parse_size(text, mb):
    assert parse_size_mb(text) == mb


def _plan_cli(node_mem: str, cores: int, *args: str) -> subprocess.CompletedProcess:
    """``boneage plan`` for a node of ``node_mem`` and ``cores``."""
    cmd = [sys.executable, "-m", "boneage.cli", "plan", "--node-mem", node_mem]
    return subprocess.run([*cmd, "--node-cores", str(cores), *args], capture_output=True, text=True)


def test_plan_cli_prints_the_plan():
    out = _plan_cli("64G", 24, "--proc-mem", "11G").stdout
    assert "5 processes x 4 threads = 20 of 24 cores busy" in out
    assert "single-threaded: 5 of 24 cores" in out
    bad = _plan_cli("lots", 4, "--proc-mem", "1G")
    assert bad.returncode != 0 and "not a memory size" in bad.stderr


def test_estimates_grow_with_input_and_shard_size():
    assert coarse_mem_mb("predict", 256, 256) > coarse_mem_mb("predict", 128, 256)
    assert coarse_mem_mb("shard", 128, 1024) > coarse_mem_mb("shard", 128, 256)


def test_predict_memory_prefers_measurement_then_estimate(tmp_path):
    from boneage.memory.model import ModelFootprint
    from boneage.memory.node import JOB_OVERHEAD_MB, predict_memory_mb

    footprint, calibration = tmp_path / "footprint.json", tmp_path / "calibration.json"
    default, source = predict_memory_mb(str(footprint), str(calibration), 128, 256)
    assert source == "default" and default == coarse_mem_mb("predict", 128, 256, 64)
    ModelFootprint("small_cnn", 128, 282897, 281937, 1366370).save(footprint)
    estimated, source = predict_memory_mb(str(footprint), str(calibration), 128, 256)
    assert source == "estimated" and 800 < estimated - JOB_OVERHEAD_MB < 1400
    calibration.write_text(json.dumps({"peak_rss_mb": 1000.0}))
    measured, source = predict_memory_mb(str(footprint), str(calibration), 128, 256, margin=0.25)
    assert (measured, source) == (1250 + JOB_OVERHEAD_MB, "measured")


def test_node_defaults_to_this_machine():
    from boneage.memory.node import Node, machine_memory_mb

    here = Node.from_config({})
    assert here.cores == os.cpu_count() and here.mem_mb == machine_memory_mb(reserve_mb=0)
    site = Node.from_config(
        {"node_mem": "64G", "node_cores": 24, "reserve": "4G", "memory_margin": 0.1}
    )
    assert (site.mem_mb, site.cores, site.reserve_mb, site.margin) == (65536, 24, 4096, 0.1)


def test_plan_cli_from_a_calibration(tmp_path):
    cal = tmp_path / "calibration.json"
    cal.write_text(json.dumps({"peak_rss_mb": 8000.0}))
    out = _plan_cli("64G", 24, "--calibration", str(cal)).stdout
    assert "one predict process: 9900 MB (measured)" in out  # 8000 x 1.2 + 300
    assert "6 processes x 4 threads = 24 of 24 cores busy" in out


def test_dry_run_plans_for_slurm_only_where_sinfo_answers(tmp_path, monkeypatch):
    """A dry run (slurm=None) takes the node from sinfo where Slurm answers, else this
    machine's, GPUs included (a DGX without Slurm: nvidia-smi's 8)."""
    from boneage.memory.node import Node

    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text('#!/bin/sh\n[ "$1" = -L ] && seq 0 7 | sed "s/^/GPU /"\n')
    (tools / "sinfo").write_text("#!/bin/sh\nexit 1\n")  # installed, no cluster answers
    for tool in tools.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    here = Node.from_config({}, slurm=None)  # no configuration: sinfo is not asked
    assert (here.gpus, here.cores) == (8, os.cpu_count())
    (tmp_path / "slurm.conf").write_text("ClusterName=site\n")
    assert Node.from_config({}, slurm=None).gpus == 8  # configured, but sinfo fails
    answers = 'case "$3" in *%G*) echo "gpu* gpu:a100:4(S:0-1)";; *) echo "gpu* 512000 64";; esac'
    (tools / "sinfo").write_text(f"#!/bin/sh\n{answers}\n")  # sinfo --noheader --format F
    cluster = Node.from_config({}, slurm=None)
    assert (cluster.mem_mb, cluster.cores, cluster.gpus) == (512000, 64, 4)
