"""A training job killed mid-run resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import REPO

from boneage.atomic import write_json, write_tsv

pytestmark = pytest.mark.slow
EPOCHS = 25


def _train_cmd(tmp_path, paths, split):
    write_json(tmp_path / "index.json", {"shards": [{"path": p} for p in paths]})
    write_tsv(tmp_path / "split.tsv", split)
    exp = {"image_size": 32, "epochs": EPOCHS, "batch_size": 8, "seed": 3}
    return [
        sys.executable,
        "-m",
        "boneage.cli",
        "train",
        "--name",
        "r",
        "--experiment",
        json.dumps(exp),
        "--index",
        str(tmp_path / "index.json"),
        "--split",
        str(tmp_path / "split.tsv"),
        "--out-dir",
        str(tmp_path / "model"),
        "--threads",
        "1",
    ]


def test_killed_job_resumes_without_gaps(tmp_path, tiny_shards):
    cmd = _train_cmd(tmp_path, *tiny_shards)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    state = tmp_path / "model" / "checkpoint" / "state.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    done = json.loads(state.read_text())["epoch"] + 1
    assert 1 <= done < EPOCHS
    assert not (tmp_path / "model" / "model.keras").exists()

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming r after epoch {done}/{EPOCHS}" in rerun.stdout
    history = pd.read_csv(tmp_path / "model" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))  # no gaps, no repeats
    summary = json.loads((tmp_path / "model" / "train.json").read_text())
    assert summary["epochs_run"] == EPOCHS
