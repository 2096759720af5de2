"""Training on tiny shards: outputs, learning rate, checkpoints that belong to one run."""

from __future__ import annotations

import json

import numpy as np
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


def test_a_finished_run_leaves_nothing_a_changed_rerun_could_resume(tmp_path, tiny_shards):
    """More epochs in the same folder train anew and equal a clean run of those settings."""
    from boneage.models import load_model, weights_digest
    from boneage.train import run_training

    paths, split = tiny_shards
    exp = Experiment("tiny", image_size=32, epochs=1, batch_size=8)
    first = run_training(exp, paths, split, str(tmp_path / "run"), threads=1)
    assert first["epochs_run"] == 1
    assert not (tmp_path / "run" / "checkpoint").exists()  # nothing left to resume
    assert first["model_digest"] == weights_digest(load_model(tmp_path / "run" / "model.keras"))
    assert first["n_train"] == (split["subset"] == "train").sum()

    exp.epochs = 3
    again = run_training(exp, paths, split, str(tmp_path / "run"), threads=1)
    clean = run_training(exp, paths, split, str(tmp_path / "clean"), threads=1)
    history = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [1, 2, 3]
    assert again["model_digest"] == clean["model_digest"] != first["model_digest"]
    assert (
        again["inputs"] == clean["inputs"]
        and again["inputs"]["settings"] != first["inputs"]["settings"]
    )
    assert weights_digest(load_model(tmp_path / "run" / "model.keras")) == clean["model_digest"]


def test_a_checkpoint_of_other_inputs_is_discarded_with_the_reason(tmp_path, caplog):
    from boneage.provenance import run_key
    from boneage.train import checkpoint_state

    mine = {"settings": "s1", "data": "d1", "weights": "random", "world_size": 1, "versions": "v"}
    other = {**mine, "data": "d0", "world_size": 2}
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "last.keras").write_bytes(b"old model")
    state = {"epoch": 4, "history": [], "key": run_key(other), "inputs": other}
    (ckpt / "state.json").write_text(json.dumps(state))
    assert checkpoint_state(ckpt / "state.json", run_key(mine), mine, "e", clear=False) is None
    assert (ckpt / "last.keras").exists()  # only the chief removes it
    with caplog.at_level("INFO", logger="boneage.train"):
        assert checkpoint_state(ckpt / "state.json", run_key(mine), mine, "e", clear=True) is None
    assert not ckpt.exists()
    assert "discarding the checkpoint of another run (data, world_size differ)" in caplog.text
    # Its own checkpoint is resumed.
    ckpt.mkdir()
    (ckpt / "state.json").write_text(json.dumps({**state, "key": run_key(mine)}))
    assert checkpoint_state(ckpt / "state.json", run_key(mine), mine, "e", clear=True)["epoch"] == 4


@pytest.mark.parametrize("precision,xla", [("mixed_bfloat16", True), ("mixed_float16", False)])
def test_mixed_precision_and_xla(tmp_path, tiny_shards, precision, xla):
    """The GPU settings run here too (bfloat16 and XLA on CPU): finite loss, float32 months."""
    import keras
    import numpy as np

    from boneage.models import load_model
    from boneage.train import run_training

    paths, split = tiny_shards
    exp = Experiment(
        "mp",
        image_size=32,
        epochs=1,
        batch_size=8,
        precision=precision,
        xla=xla,
        deterministic=False,
    )
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


def test_rank_slices_are_disjoint_and_cover_every_kept_example(tiny_shards):
    from boneage.data import select_examples

    paths, split = tiny_shards
    keep = set(split.loc[split["subset"] == "train", "id"])
    whole = select_examples(paths, keep, None)
    parts = [select_examples(paths, keep, (rank, 3)) for rank in range(3)]
    for k in range(len(paths)):  # per shard: the three ranks' positions split the whole
        together = np.sort(np.concatenate([p[k] for p in parts]))
        assert together.tolist() == whole[k].tolist()
    counts = [sum(len(x) for x in p) for p in parts]
    assert sum(counts) == len(keep) and max(counts) - min(counts) <= 1
