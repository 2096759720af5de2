"""`snakemake --profile dgx -n` on an 8-GPU host: model jobs ask for GPUs, the rest for none.

The host's GPUs come from ``nvidia-smi`` (faked: this machine has none), as
on a DGX, not from CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml
from harness import TINY

from boneage.workflow_run import snakemake, tool_env

pytestmark = pytest.mark.slow
#: Rules whose jobs run a model, and the GPUs each job takes on the dgx profile
#: (training: one per rank, the profile's 8 ranks).
MODEL_RULE_GPUS = {
    "train_model": 8,
    "model_footprint": 1,
    "calibrate": 1,
    "predict": 1,
    "saliency": 1,
}


def dgx_env(tmp_path) -> dict[str, str]:
    """A DGX's environment: ``nvidia-smi`` lists 8 GPUs of 80 GB, no CUDA_VISIBLE_DEVICES,
    and no Slurm (a dry run plans for Slurm where sinfo answers)."""
    tool = tmp_path / "bin" / "nvidia-smi"
    tool.parent.mkdir()
    gpus = "".join(f"echo 'GPU {i}: NVIDIA A100-SXM4-80GB (UUID: GPU-{i})'; " for i in range(8))
    tool.write_text(f'#!/bin/sh\ncase "$1" in -L) {gpus};; *) echo 81920;; esac\n')
    tool.chmod(0o755)
    sinfo = tool.parent / "sinfo"  # no Slurm here (another test's may be up)
    sinfo.write_text("#!/bin/sh\nexit 1\n")
    sinfo.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return tool_env(base, PATH=f"{tool.parent}:{tool_env()['PATH']}")


def dry_run_jobs(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of each job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            line = re.search(r"^\s*resources: (.*)$", block, re.M)
            pairs = (p.split("=", 1) for p in line.group(1).split(", ")) if line else ()
            jobs.append((rule.group(1), {k: v for k, v in pairs}))
    return jobs


def test_dgx_dry_run_gives_each_model_job_its_gpus(tmp_path):
    (tmp_path / "my-cohorts.yaml").write_text(yaml.safe_dump(TINY))  # as docs/workflow.md
    mine = ("--configfile", "my-cohorts.yaml")  # last: it takes every word after it
    # Predict jobs exist once the manifest checkpoint has named the shards.
    first = snakemake(
        tmp_path, "results/cohorts/tiny/shards.json", *mine, env=tool_env(CUDA_VISIBLE_DEVICES="")
    )
    assert first.returncode == 0, first.stderr[-3000:]
    env = dgx_env(tmp_path)
    dry = snakemake(tmp_path, *mine, "-n", profile="dgx", env=env)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    jobs = dry_run_jobs(dry.stdout + dry.stderr)
    rules = {rule for rule, _ in jobs}
    assert {*MODEL_RULE_GPUS, "shard", "aggregate", "report"} <= rules, rules
    assert sum(rule == "predict" for rule, _ in jobs) == 3  # one per shard of TINY
    for rule, resources in jobs:
        want = MODEL_RULE_GPUS.get(rule, 0)
        assert int(resources.get("gpus", 0)) == want, (rule, resources)
    # Without GPUs (CUDA_VISIBLE_DEVICES empty) the same DAG asks for none.
    cpu = snakemake(tmp_path, *mine, "-n", profile="dgx", env={**env, "CUDA_VISIBLE_DEVICES": ""})
    assert cpu.returncode == 0, cpu.stderr[-3000:]
    assert all(int(r.get("gpus", 0)) == 0 for _, r in dry_run_jobs(cpu.stdout + cpu.stderr))
