"""Training on tiny shards: outputs, learning rate, checkpoints that belong to one run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from boneage.experiment import Experiment
from boneage.train import learning_rate

pytestmark = pytest.mark.slow


def test_learning_rate_schedule():
    exp = Experiment("e", epochs=10, learning_rate=1e-3, warmup_epochs=2, lr_scaling="linear")
    rates = [learning_rate(exp, e, world=4) for e in range(10)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(4e-3)  # warm-up to base x world
    assert rates[-1] < rates[2] * 0.2
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [  # 10 epochs at 1e-3, no warm-up; worked out by hand from docs/training.md's description
        ("constant", [1e-3] * 10),
        ("step", [1e-3] * 6 + [1e-4] * 3 + [1e-5]),  # x0.1 at 60 % and again at 85 %
        ("cosine", [1e-3, None, None, None, None, 0.525e-3, None, None, None, None]),
    ],
)
def test_schedules_give_the_rates_they_promise(schedule, expected):
    exp = Experiment("e", epochs=10, learning_rate=1e-3, warmup_epochs=0, schedule=schedule)
    for epoch, want in enumerate(expected):
        if want is not None:
            assert learning_rate(exp, epoch, world=1) == pytest.approx(want), epoch


def test_sgd_and_a_step_schedule_train_with_the_rates_in_the_history(tmp_path, tiny_shards):
    import keras

    from boneage.train import make_optimizer, run_training

    sgd = make_optimizer(Experiment("e", optimizer="sgd"), 0.01)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.9
    adamw = make_optimizer(Experiment("e", optimizer="adamw", weight_decay=0.02), 0.01)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 0.02
    paths, split = tiny_shards
    exp = Experiment(
        "sgd",
        image_size=32,
        epochs=3,
        batch_size=8,
        optimizer="sgd",
        schedule="step",
        learning_rate=1e-3,
        warmup_epochs=0,
    )
    run_training(exp, paths, split, str(tmp_path / "run"), threads=1)
    history = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    # step: x0.1 from 60 % of the epochs (epoch index 2 of 3: t = 0.67)
    np.testing.assert_allclose(history["lr"], [1e-3, 1e-3, 1e-4])
    assert np.isfinite(history["loss"]).all()


def test_censored_labels_train_only_with_train_censored(tmp_path, tiny_shards):
    """Labels like "13 +" (censored) are kept, and trained on only when the config says so."""
    from boneage.config import validate
    from boneage.plan import RunPlan
    from boneage.train import run_training

    paths, split = tiny_shards
    split = split.copy()
    censored = split.index[split["subset"] == "train"][:3]
    split.loc[censored, "label_status"] = "censored"
    trainable = (split["subset"] == "train") & split["label_status"].isin(["exact", "range"])
    runs = {}
    for flag in (False, True):
        config = validate(
            {
                "cohorts": {"c": {"source": "synthetic", "n": 40}},
                "train_cohorts": ["c"],
                "labels": {"train_censored": flag},
                "experiments": {"e": {"epochs": 1, "batch_size": 8}},
            }
        )
        settings = RunPlan(config, lambda: None).experiment_settings("e")
        exp = Experiment.from_dict("e", {**settings, "image_size": 32})
        runs[flag] = run_training(exp, paths, split, str(tmp_path / str(flag)), threads=1)
    assert runs[False]["n_train"] == trainable.sum()
    assert runs[True]["n_train"] == trainable.sum() + 3


def test_a_rank_other_than_0_writes_nothing(tmp_path, tiny_shards):
    """Rank 1 of 2 trains (its own slice, the same steps) but writes no file of the run."""
    from boneage.distribute import Distribution
    from boneage.train import run_training

    class SecondRank(Distribution):
        rank, size, local_rank, local_size = 1, 2, 1, 2

        def gather(self, value):
            return [value, value]

    paths, split = tiny_shards
    out = tmp_path / "run"
    exp = Experiment("tiny", image_size=32, epochs=2, batch_size=4)
    summary = run_training(exp, paths, split, str(out), dist=SecondRank(), threads=1)
    assert summary["epochs_run"] == 2
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


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
