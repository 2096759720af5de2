"""A training job killed mid-run resumes from its own checkpoint, and ends as if never killed.

The proof is the state, not a log line: the resumed weights are those of
``checkpoint/last.keras`` (read here, independently), the optimizer has
taken exactly the steps of the finished epochs, and the final model is
bit-identical to an uninterrupted run's. A checkpoint of another run (here:
another learning rate) is discarded, and the run equals a clean one.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import REPO

from boneage.atomic import write_json, write_tsv
from boneage.labels import TRAINABLE

pytestmark = pytest.mark.slow
EPOCHS, BATCH = 12, 8
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _train_cmd(tmp_path, paths, split, out: str, **settings) -> list[str]:
    write_json(tmp_path / "index.json", {"shards": [{"path": p} for p in paths]})
    write_tsv(tmp_path / "split.tsv", split)
    exp = {"image_size": 32, "epochs": EPOCHS, "batch_size": BATCH, "seed": 3, **settings}
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
        str(tmp_path / out),
        "--threads",
        "1",
    ]


def _kill_after_a_checkpoint(cmd: list[str], state) -> int:
    """Start training, SIGKILL it once a checkpoint is written; the epochs it finished."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    done = json.loads(state.read_text())["epoch"] + 1
    assert 1 <= done < EPOCHS
    return done


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _steps_per_epoch(split: pd.DataFrame) -> int:
    train = (split["subset"] == "train") & split["label_status"].isin(TRAINABLE)
    return math.ceil(int(train.sum()) / BATCH)


def test_killed_job_resumes_its_own_state_and_ends_as_if_never_killed(tmp_path, tiny_shards):
    from boneage.models import load_model, weights_digest

    paths, split = tiny_shards
    cmd = _train_cmd(tmp_path, paths, split, "model")
    ckpt = tmp_path / "model" / "checkpoint"
    done = _kill_after_a_checkpoint(cmd, ckpt / "state.json")
    assert not (tmp_path / "model" / "model.keras").exists()
    shutil.copy(ckpt / "last.keras", tmp_path / "last.keras")  # the truth, before the rerun
    saved = load_model(tmp_path / "last.keras")
    assert int(saved.optimizer.iterations) == done * _steps_per_epoch(split)

    rerun = _run(cmd)
    resumed = re.search(
        r"resuming r after epoch (\d+)/\d+: weights (\w+), optimizer step (\d+)", rerun.stdout
    )
    assert resumed, rerun.stdout[-2000:]
    assert int(resumed[1]) == done
    assert resumed[2] == weights_digest(saved)
    assert int(resumed[3]) == int(saved.optimizer.iterations)
    history = pd.read_csv(tmp_path / "model" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))  # no gaps, no repeats
    assert not ckpt.exists()  # finished: nothing left for a later run

    _run(_train_cmd(tmp_path, paths, split, "uninterrupted"))
    killed = json.loads((tmp_path / "model" / "train.json").read_text())
    clean = json.loads((tmp_path / "uninterrupted" / "train.json").read_text())
    assert killed["model_digest"] == clean["model_digest"]
    assert killed["run_key"] == clean["run_key"]
    reference = pd.read_csv(tmp_path / "uninterrupted" / "history.tsv", sep="\t")
    cols = ["epoch", "loss", "val_mae", "lr"]
    pd.testing.assert_frame_equal(history[cols], reference[cols], check_exact=True)
    model = load_model(tmp_path / "model" / "model.keras")
    assert weights_digest(model) == clean["model_digest"]


@pytest.mark.heavy  # the fast tier stays under 10 minutes
def test_a_killed_run_of_other_settings_is_not_resumed(tmp_path, tiny_shards):
    paths, split = tiny_shards
    ckpt = tmp_path / "model" / "checkpoint"
    _kill_after_a_checkpoint(_train_cmd(tmp_path, paths, split, "model"), ckpt / "state.json")

    rerun = _run(_train_cmd(tmp_path, paths, split, "model", learning_rate=0.001))
    assert "discarding the checkpoint of another run (settings differ)" in rerun.stdout
    assert "resuming" not in rerun.stdout
    _run(_train_cmd(tmp_path, paths, split, "clean", learning_rate=0.001))
    got = json.loads((tmp_path / "model" / "train.json").read_text())
    clean = json.loads((tmp_path / "clean" / "train.json").read_text())
    assert got["model_digest"] == clean["model_digest"] and got["epochs_run"] == EPOCHS
