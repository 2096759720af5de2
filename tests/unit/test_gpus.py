"""GPU claims on a shared machine: all at once or wait, never held by a dead job.

This machine has no GPU: the claims run on GPU ids given as CUDA_VISIBLE_DEVICES
(what nvidia-smi lists on a DGX); the locks are real files and real flocks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

HOLD = """
import os, sys, time
from boneage import gpus
held = gpus.claim(int(sys.argv[1]))
print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(600)
"""


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine of 4 GPUs (ids 0-3) and a private lock folder."""
    from boneage import gpus

    monkeypatch.setattr(gpus, "LOCK_DIR", tmp_path / "locks")
    monkeypatch.setenv("BONEAGE_GPU_LOCKS", str(tmp_path / "locks"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.delenv("BONEAGE_GPUS_CLAIMED", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    return gpus


def _holder(n: int) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(n)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    return proc, proc.stdout.readline().strip().split(",")


def test_jobs_get_disjoint_gpus_and_a_killed_jobs_gpus_come_free(machine, monkeypatch):
    first, ids = _holder(3)
    try:
        assert ids == ["0", "1", "2"]
        mine = machine.claim(1, wait_s=5)
        assert mine.ids == ["3"] and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
        mine.release()
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
        monkeypatch.delenv("BONEAGE_GPUS_CLAIMED")
        with pytest.raises(TimeoutError):  # 2 wanted, 1 free: all at once or wait
            machine.claim(2, wait_s=1.5, poll_s=0.2)
        first.send_signal(signal.SIGKILL)  # kill -9: the kernel drops its locks
        first.wait()
        start = time.monotonic()
        with machine.claim(4, wait_s=5, poll_s=0.2) as every:
            assert every.ids == ["0", "1", "2", "3"]
        assert time.monotonic() - start < 2
    finally:
        first.kill()
        first.wait()
        first.stdout.close()


def test_under_slurm_or_a_parents_claim_the_visible_gpus_are_taken_as_they_are(
    machine, monkeypatch
):
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert machine.claim(2).ids == ["2", "3"]
    assert not (machine.LOCK_DIR).exists()  # no lock files: Slurm gave them
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("BONEAGE_GPUS_CLAIMED", "1")
    assert machine.claim(1).ids == ["2"]


STEP = """
import os, sys
from boneage.cli import build_parser, devices_for
held = devices_for(build_parser().parse_args(sys.argv[1:]))
print(repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
"""


@pytest.mark.parametrize(
    ("argv", "sees"),
    [
        (["split", "--manifest", "m", "--out", "o"], "''"),  # no model: no GPU
        (["report", "--results", "r", "--benchmarks", "b", "--config", "c", "--out", "o"], "''"),
        (["predict", "--model", "m", "--shard", "s", "--out", "o"], "'0'"),  # one GPU
        (["launch", "--ranks", "3", "--", "boneage", "train"], "'0,1,2'"),  # one per rank
    ],
)
def test_each_step_sees_its_own_gpus_or_none(machine, argv, sees):
    out = subprocess.run(
        [sys.executable, "-c", STEP, *argv], capture_output=True, text=True, env=os.environ
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == sees


def test_gpu_check_on_a_machine_without_gpus_says_so(tmp_path):
    """scripts/gpu_check.py (the first GPU machine's check) exits 2 here and writes why."""
    import json
    from pathlib import Path

    out = tmp_path / "gpu_check.json"
    script = Path(__file__).parents[2] / "scripts" / "gpu_check.py"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(script), "--out", str(out)], env=env)
    assert proc.returncode == 2
    assert json.loads(out.read_text())["gpus"] == 0
