"""Training on tiny shards: outputs, learning rate, resume after a kill."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from boneage.train import Experiment, learning_rate

pytestmark = pytest.mark.slow


def test_learning_rate_schedule():
    exp = Experiment("e", epochs=10, learning_rate=1e-3, warmup_epochs=2)
    rates = [learning_rate(exp, e, world=4) for e in range(10)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(4e-3)  # warm-up to base x world
    assert rates[-1] < rates[2] * 0.2
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))


def test_train_writes_outputs_and_resumes(tmp_path, tiny_shards):
    from boneage.train import run_training

    paths, split = tiny_shards
    exp = Experiment("tiny", image_size=32, epochs=1, batch_size=8)
    first = run_training(exp, paths, split, str(tmp_path), threads=1)
    assert first["epochs_run"] == 1
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 0
    epoch1 = pd.read_csv(tmp_path / "history.tsv", sep="\t").iloc[0]
    # A rerun with more epochs (or after a kill) continues from the checkpoint.
    exp.epochs = 3
    second = run_training(exp, paths, split, str(tmp_path), threads=1)
    history = pd.read_csv(tmp_path / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [1, 2, 3]
    assert second["epochs_run"] == 3
    assert history.loc[0, "loss"] == pytest.approx(epoch1["loss"])  # epoch 1 was not redone
    assert (tmp_path / "model.keras").is_file()
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["n_train"] == (split["subset"] == "train").sum()


@pytest.mark.parametrize("precision,xla", [("mixed_bfloat16", True), ("mixed_float16", False)])
def test_mixed_precision_and_xla(tmp_path, tiny_shards, precision, xla):
    """The GPU settings run here too (bfloat16 and XLA on CPU): finite loss, float32 months."""
    import keras
    import numpy as np

    from boneage.models import load_model
    from boneage.train import run_training

    paths, split = tiny_shards
    exp = Experiment("mp", image_size=32, epochs=1, batch_size=8, precision=precision, xla=xla)
    summary = run_training(exp, paths, split, str(tmp_path), threads=1)
    assert keras.config.dtype_policy().name == "float32"  # restored after training
    assert np.isfinite(pd.read_csv(tmp_path / "history.tsv", sep="\t")["loss"]).all()
    assert summary["experiment"]["precision"] == precision and summary["experiment"]["xla"] is xla
    model = load_model(tmp_path / "model.keras")
    assert model.get_layer("head_dense0").dtype_policy.name == precision
    out = model({"image": np.zeros((2, 32, 32, 1), "float32"), "sex": np.zeros((2, 1))})
    assert out["months"].dtype == "float32"
    if precision == "mixed_float16":
        assert "LossScaleOptimizer" in type(model.optimizer).__name__
