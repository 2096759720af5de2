"""Train one experiment: a custom Keras 3 train step that Horovod can wrap.

Each rank streams its own disjoint subset of the training shards, computes
gradients on its batch, averages them with :meth:`Distribution.allreduce`
and applies them; weights start identical (broadcast from rank 0). Rank 0
writes a checkpoint (weights + optimizer state) after every epoch, so a
rerun resumes where a killed job stopped, plus ``history.tsv``, the
best-validation ``model.keras`` and ``train.json``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boneage.atomic import atomic_path, write_json, write_tsv
from boneage.distribute import Distribution, set_threads
from boneage.manifest import TRAINABLE


@dataclass
class Experiment:
    """Settings of one training run (the ``experiments:`` entries of config.yaml)."""

    name: str
    backbone: str = "small_cnn"
    image_size: int = 128
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_epochs: int = 1
    weight_decay: float = 1e-4
    augment: bool = True
    seed: int = 1
    train_censored: bool = False

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> "Experiment":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(name=name, **known)


def learning_rate(exp: Experiment, epoch: int, world: int) -> float:
    """Base rate x world size, linear warm-up, then cosine decay to 5 %."""
    peak = exp.learning_rate * world
    if epoch < exp.warmup_epochs:
        return peak * (epoch + 1) / (exp.warmup_epochs + 1)
    t = (epoch - exp.warmup_epochs) / max(exp.epochs - exp.warmup_epochs, 1)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def subset_ids(split: pd.DataFrame, subset: str, train_censored: bool = False) -> set[str]:
    """Study ids of one subset whose labels may train (exact, range, corrected[, censored])."""
    statuses = TRAINABLE + (("censored",) if train_censored else ())
    keep = (split["subset"] == subset) & split["label_status"].isin(statuses)
    return set(split.loc[keep, "id"].astype(str))


def label_stats(shards: list[str], keep: set[str]) -> tuple[float, float, int]:
    """Mean and sd of the training labels (for the output scale and the baseline)."""
    from boneage.shards import read_shard

    values = []
    for p in shards:
        shard = read_shard(p, images=False)
        values += [y for sid, y in zip(shard.ids, shard.boneage) if sid in keep]
    if not values:
        raise ValueError("no training images: the train subset of the training cohorts is empty")
    arr = np.asarray(values, float)
    return float(arr.mean()), float(max(arr.std(), 1.0)), int(arr.size)


def run_training(exp: Experiment, shards: list[str], split: pd.DataFrame, out_dir: str,
                 dist: Distribution | None = None, threads: int | None = None) -> dict[str, Any]:
    """Train ``exp`` on the ``train`` subset of ``shards``; validate on ``val``.

    Returns the summary also written to ``out_dir/train.json``.
    """
    import keras
    import tensorflow as tf

    from boneage.data import count_examples, make_dataset
    from boneage.models import build_model, load_model

    dist = dist or Distribution()
    out = Path(out_dir)
    ckpt_dir = out / "checkpoint"
    if dist.is_chief:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    set_threads(threads)
    keras.utils.set_random_seed(exp.seed + dist.rank)

    train_ids = subset_ids(split, "train", exp.train_censored)
    val_ids = subset_ids(split, "val")
    mean, sd, n_train = label_stats(shards, train_ids)
    my_shards = shards[dist.rank::dist.size] if len(shards) >= dist.size else shards
    n_mine = count_examples(my_shards, train_ids)
    steps = max(1, math.ceil(n_train / (exp.batch_size * dist.size)))
    train_ds = make_dataset(my_shards, exp.image_size, exp.batch_size, keep=train_ids,
                            training=exp.augment, seed=exp.seed + 7919 * dist.rank,
                            n_examples=n_mine)
    if not exp.augment:
        train_ds = train_ds.repeat()
    val_shards = shards[dist.rank::dist.size]  # every rank scores its slice; sums are reduced
    val_ds = make_dataset(val_shards, exp.image_size, 64, keep=val_ids,
                          n_examples=count_examples(val_shards, val_ids))

    state_file = ckpt_dir / "state.json"
    start_epoch, history = 0, []
    if state_file.exists():
        state = json.loads(state_file.read_text())
        model = load_model(ckpt_dir / "last.keras")
        optimizer = model.optimizer
        start_epoch, history = state["epoch"] + 1, state["history"]
        print(f"resuming {exp.name} after epoch {state['epoch'] + 1}/{exp.epochs}", flush=True)
    else:
        model = build_model(exp.backbone, exp.image_size, mean, sd)
        optimizer = keras.optimizers.AdamW(learning_rate(exp, 0, dist.size),
                                           weight_decay=exp.weight_decay)
        model.compile(optimizer=optimizer, loss="mae")
        optimizer.build(model.trainable_variables)
    dist.broadcast(model.variables)
    dist.broadcast(optimizer.variables)

    @tf.function
    def train_step(inputs, y):
        with tf.GradientTape() as tape:
            pred = model(inputs, training=True)
            loss = tf.reduce_mean(tf.abs(pred - y))
        grads = tape.gradient(loss, model.trainable_variables)
        grads = dist.allreduce(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def eval_step(inputs, y):
        pred = model(inputs, training=False)
        return tf.reduce_sum(tf.abs(pred - y)), tf.cast(tf.shape(y)[0], tf.float32)

    batches = iter(train_ds)
    best = min((h["val_mae"] for h in history), default=float("inf"))
    for epoch in range(start_epoch, exp.epochs):
        lr = learning_rate(exp, epoch, dist.size)
        optimizer.learning_rate.assign(lr)
        t0 = time.perf_counter()
        losses = [float(train_step(*next(batches))) for _ in range(steps)]
        seconds = time.perf_counter() - t0
        err, n = 0.0, 0.0
        for inputs, y in val_ds:
            e, k = eval_step(inputs, y)
            err, n = err + float(e), n + float(k)
        total = dist.average(n)
        val_mae = dist.average(err) / total if total else float("nan")
        row = {"epoch": epoch + 1, "loss": dist.average(float(np.mean(losses))),
               "val_mae": val_mae, "lr": lr, "seconds": round(seconds, 2),
               "images_per_s": round(steps * exp.batch_size * dist.size / seconds, 1)}
        history.append(row)
        if dist.is_chief:
            print(f"epoch {epoch + 1}/{exp.epochs} loss {row['loss']:.2f} val_mae "
                  f"{val_mae:.2f} lr {lr:.2e} {row['images_per_s']:.0f} img/s", flush=True)
            if val_mae < best:
                best = val_mae
                save_keras(model.save_weights, ckpt_dir / "best.weights.h5")
            save_keras(model.save, ckpt_dir / "last.keras")
            write_json(state_file, {"epoch": epoch, "history": history})

    summary = {"experiment": asdict(exp), "n_train": n_train, "n_val": len(val_ids),
               "train_mean": mean, "train_sd": sd, "world_size": dist.size,
               "best_val_mae": best, "epochs_run": len(history),
               "train_seconds": round(sum(h["seconds"] for h in history), 1)}
    if dist.is_chief:
        if (ckpt_dir / "best.weights.h5").exists():
            model.load_weights(ckpt_dir / "best.weights.h5")
        save_keras(model.save, out / "model.keras")
        write_tsv(out / "history.tsv", pd.DataFrame(history))
        write_json(out / "train.json", summary)
    return summary


def save_keras(save, path: Path) -> None:
    """Atomically save with a Keras ``save``/``save_weights`` (which insist on the suffix)."""
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + suffix)
        save(str(staged))
        os.replace(staged, tmp)
