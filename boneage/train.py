"""Train one experiment: a custom Keras 3 train step that Horovod wraps.

Each rank streams its own disjoint part of the training shards (whole
shards when there are at least as many shards as ranks, else every
size-th example), computes gradients on its batch, averages them with
:meth:`Distribution.allreduce` and applies them; weights start identical
(broadcast from rank 0). The learning rate scales with the number of ranks
after a linear warm-up. Rank 0 alone writes a checkpoint (weights and
optimizer state) after every epoch, so a rerun resumes where a killed job
stopped, plus ``history.tsv``, the best-validation ``model.keras`` and
``train.json``.

A checkpoint belongs to one run: it is keyed by the digests of everything
that determines the model (:mod:`boneage.provenance`). A rerun with other
data, settings, starting weights, world size or software discards it and
trains anew, and a finished run removes it. With ``deterministic`` (the
default) the same inputs on the same machine give bit-identical weights,
also when a killed run is resumed: each epoch's batches depend only on the
seed and the epoch (:class:`boneage.data.TrainingData`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boneage.atomic import atomic_path, write_json, write_tsv
from boneage.config import check_determinism
from boneage.distribute import Distribution, configure_devices, gpu_peak_mb
from boneage.experiment import Experiment
from boneage.gpus import rank_gpu
from boneage.labels import TRAINABLE
from boneage.log import Progress
from boneage.provenance import differences, package_versions, run_key, training_inputs

log = logging.getLogger(__name__)


#: How the rate grows with ranks where ``lr_scaling`` is not set: linear for SGD (Goyal
#: et al. 2017), square root for the adaptive optimizers, whose step size the batch
#: barely changes (linear x 8 ranks of AdamW 0.002 is 0.016, too high to fine-tune).
LR_SCALING = {"sgd": "linear", "adam": "sqrt", "adamw": "sqrt"}


def rank_factor(exp: Experiment, world: int) -> float:
    """What the head's learning rate is multiplied by for ``world`` ranks."""
    rule = exp.lr_scaling or LR_SCALING[exp.optimizer]
    return {"linear": float(world), "sqrt": math.sqrt(world), "none": 1.0}[rule]


def learning_rate(exp: Experiment, epoch: int, world: int) -> float:
    """The head's rate: base x :func:`rank_factor` after a linear warm-up, then the
    schedule's decay (the backbone's is ``backbone_lr_scale`` of it)."""
    peak = exp.learning_rate * rank_factor(exp, world)
    if epoch < exp.warmup_epochs:
        return peak * (epoch + 1) / (exp.warmup_epochs + 1)
    t = (epoch - exp.warmup_epochs) / max(exp.epochs - exp.warmup_epochs, 1)
    if exp.schedule == "constant":
        return peak
    if exp.schedule == "step":
        return peak * (0.1 if t >= 0.6 else 1.0) * (0.1 if t >= 0.85 else 1.0)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(exp: Experiment, lr: float):
    """The experiment's optimizer (adam, adamw or sgd with Nesterov momentum)."""
    import keras

    if exp.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if exp.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
    return keras.optimizers.AdamW(lr, weight_decay=exp.weight_decay)


def make_train_step(
    model,
    optimizer,
    dist: Distribution,
    loss_fn,
    xla: bool = False,
    backbone_lr_scale: float = 1.0,
):
    """One compiled step: forward, loss, gradients averaged over ranks, update.

    The loss is scaled by the optimizer (a LossScaleOptimizer under
    mixed_float16; unscaled otherwise) and the update unscales it. With
    ``xla``, forward and backward are compiled by XLA; Horovod's allreduce
    stays outside the XLA cluster (its ops have no XLA kernels). The step
    trains the model's trainable variables as they are now (a frozen
    backbone: the head alone). The pretrained backbone's variables move by
    ``backbone_lr_scale`` times the optimizer's update: exactly a smaller
    learning rate for them, since SGD's, Adam's and AdamW's updates (momentum
    and decoupled weight decay included) are linear in the rate.
    """
    import tensorflow as tf

    from boneage.models import backbone_layers

    variables = model.trainable_variables
    slow = (
        {v.path for layer in backbone_layers(model) for v in layer.trainable_variables}
        if backbone_lr_scale != 1.0
        else set()
    )
    scaled = [v for v in variables if v.path in slow]

    @tf.function(jit_compile=xla)
    def gradients(inputs, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(model(inputs, training=True), y)
            scaled_loss = optimizer.scale_loss(loss)
        return loss, tape.gradient(scaled_loss, variables)

    @tf.function
    def train_step(inputs, y):
        loss, grads = gradients(inputs, y)
        before = [tf.identity(v) for v in scaled]
        optimizer.apply_gradients(zip(dist.allreduce(grads), variables))
        for v, b in zip(scaled, before):
            v.assign(b + backbone_lr_scale * (v - b))
        return loss

    return train_step


def set_precision(precision: str) -> str:
    """Set Keras' global dtype policy; returns the previous one (restore it after training)."""
    import keras

    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(precision)
    return previous


def set_determinism(on: bool) -> bool:
    """Turn TensorFlow's op determinism on or off; returns the previous setting.

    On, every op gives the same bits for the same inputs (TensorFlow picks
    deterministic kernels and fixed reduction orders).
    """
    from tensorflow.python.framework import config  # its disable_ is not public API

    previous = config.is_op_determinism_enabled()
    if on:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()
    return previous


def subset_ids(split: pd.DataFrame, subset: str, train_censored: bool = False) -> set[str]:
    """Study ids of one subset whose labels may train (exact, range, corrected[, censored])."""
    statuses = TRAINABLE + (("censored",) if train_censored else ())
    keep = (split["subset"] == subset) & split["label_status"].isin(statuses)
    return set(split.loc[keep, "id"].astype(str))


def label_stats(meta: dict, keep: set[str]) -> tuple[float, float, int]:
    """Mean and sd of the training labels (for the output scale and the baseline).

    ``meta`` maps shard paths to shards read without images.
    """
    values = []
    for shard in meta.values():
        values += [y for sid, y in zip(shard.ids, shard.boneage) if sid in keep]
    if not values:
        raise ValueError("no training images: the train subset of the training cohorts is empty")
    arr = np.asarray(values, float)
    return float(arr.mean()), float(max(arr.std(), 1.0)), int(arr.size)


def rank_share(shards: list[str], dist: Distribution) -> tuple[list[str], tuple[int, int] | None]:
    """This rank's shards, and an example-level (rank, size) slice when shards are too few."""
    if len(shards) >= dist.size:
        return shards[dist.rank :: dist.size], None
    return shards, (dist.rank, dist.size)


def run_training(
    exp: Experiment,
    shards: list[str],
    split: pd.DataFrame,
    out_dir: str,
    dist: Distribution | None = None,
    threads: int | None = None,
    resolve_batch: Callable[[Experiment], Experiment] | None = None,
) -> dict[str, Any]:
    """Train ``exp`` on the ``train`` subset of ``shards``; validate on ``val``.

    ``resolve_batch`` turns ``batch_size: auto`` into a number once the
    devices are configured (the CLI gives ``boneage.memory.batch.resolve_batch_size``;
    training does not size itself). Returns the summary also written to
    ``out_dir/train.json``.
    """
    if (problem := check_determinism(asdict(exp))) is not None:
        raise ValueError(f"experiment {exp.name}: {problem}")
    dist = dist or Distribution()
    device = configure_devices(dist, threads)
    if exp.batch_size == "auto":
        if resolve_batch is None:
            raise ValueError(f"experiment {exp.name}: batch_size auto needs resolve_batch")
        exp = resolve_batch(exp)  # after configure_devices: it builds a model
    previous = set_precision(exp.precision), set_determinism(exp.deterministic)
    try:
        return _train(exp, shards, split, out_dir, dist, device)
    finally:
        set_precision(previous[0])
        set_determinism(previous[1])


@dataclass
class _Inputs:
    """What one training run reads: its ids, the label scale, this rank's data, its key."""

    train_ids: set[str]
    val_ids: set[str]
    mean: float
    sd: float
    n_train: int
    steps: int  # per epoch
    train_data: Any  # boneage.data.TrainingData
    val_ds: Any  # tf.data.Dataset
    made_of: dict[str, Any]  # digests of what makes the model (boneage.provenance)
    key: str


def _inputs(
    exp: Experiment, shards: list[str], split: pd.DataFrame, dist: Distribution, per_rank: int
) -> _Inputs:
    """The training and validation data of this rank, the label scale and the run key."""
    from boneage.data import TrainingData, make_dataset
    from boneage.shards import SEX_CODES, read_shard, shard_digest

    train_ids = subset_ids(split, "train", exp.train_censored)
    val_ids = subset_ids(split, "val")
    meta = {p: read_shard(p, images=False) for p in shards}  # ids and labels, read once
    # Films whose sex is not recorded are predicted (mean over both sexes), never trained on.
    unknown = {i for s in meta.values() for i, x in zip(s.ids, s.sex) if x == SEX_CODES["U"]}
    train_ids, val_ids = train_ids - unknown, val_ids - unknown
    mean, sd, n_train = label_stats(meta, train_ids)
    mine, example_slice = rank_share(shards, dist)
    made_of = training_inputs(asdict(exp), [shard_digest(p) for p in shards], split, dist.size)
    steps = max(1, math.ceil(n_train / (per_rank * dist.size)))
    train_data = TrainingData(
        mine,
        exp.image_size,
        per_rank,
        seed=exp.seed + 7919 * dist.rank,
        keep=train_ids,
        augment=exp.augment,
        steps=steps,
        rank_slice=example_slice,
    )
    val_ds = make_dataset(mine, exp.image_size, 64, keep=val_ids, rank_slice=example_slice)
    return _Inputs(
        train_ids, val_ids, mean, sd, n_train, steps, train_data, val_ds, made_of, run_key(made_of)
    )


def _build_or_resume(
    exp: Experiment, data: _Inputs, ckpt_dir: Path, dist: Distribution
) -> tuple[Any, Any, int, list[dict[str, Any]]]:
    """The model and optimizer of epoch 0, or of this run's checkpoint; the same on every
    rank. Returns them, the first epoch to run and the history so far."""
    import keras

    from boneage.models import build_model, load_model, weights_digest

    state = checkpoint_state(
        ckpt_dir / "state.json", data.key, data.made_of, exp.name, clear=dist.is_chief
    )
    if dist.is_chief:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    start_epoch, history = 0, []
    if state:
        model = load_model(ckpt_dir / "last.keras")
        set_rng_state(model, state["rng"][dist.rank])
        optimizer = model.optimizer
        start_epoch, history = state["epoch"] + 1, state["history"]
        if dist.is_chief:
            log.info(
                f"resuming {exp.name} after epoch {start_epoch}/{exp.epochs}: weights "
                f"{weights_digest(model)}, optimizer step {int(optimizer.iterations)}"
            )
    else:
        model = build_model(
            exp.backbone,
            exp.image_size,
            data.mean,
            data.sd,
            loss=exp.loss,
            sex_mode=exp.sex_mode,
            weights=exp.weights,
        )
        optimizer = make_optimizer(exp, learning_rate(exp, 0, dist.size))
        if exp.precision == "mixed_float16":  # float16 gradients underflow without scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer)  # so that model.save keeps the optimizer state
        optimizer.build(model.trainable_variables)
    dist.broadcast(model.variables)
    dist.broadcast(optimizer.variables)
    return model, optimizer, start_epoch, history


def _log_start(exp: Experiment, data: _Inputs, dist: Distribution, device: str) -> None:
    """What the chief says before the first epoch: the run's shape, and the fine-tuning."""
    if not dist.is_chief:
        return
    log.info(
        f"{exp.name}: {exp.backbone}, {data.n_train} training images, {dist.size} rank(s) "
        f"on {device}, {data.steps} steps/epoch, {exp.precision}"
        f"{', XLA' if exp.xla else ''}"
    )
    if exp.weights not in ("random", "", None):
        rule = exp.lr_scaling or LR_SCALING[exp.optimizer]
        log.info(
            f"starting from {exp.weights} weights; head rate {exp.learning_rate:g} "
            f"(x {rank_factor(exp, dist.size):.3g}: {rule} in {dist.size} rank(s)), "
            f"backbone x {exp.backbone_lr_scale:g}; backbone frozen for "
            f"{exp.freeze_epochs} epoch(s)"
        )


def _eval_step(model):
    """A traced step: the absolute error summed over a validation batch, and its size."""
    import tensorflow as tf

    @tf.function
    def eval_step(inputs, y):
        pred = model(inputs, training=False)["months"]
        return tf.reduce_sum(tf.abs(pred - y)), tf.cast(tf.shape(y)[0], tf.float32)

    return eval_step


def _one_epoch(
    exp: Experiment,
    epoch: int,
    model,
    optimizer,
    steps: tuple[Any, Any],
    data: _Inputs,
    dist: Distribution,
) -> dict[str, Any]:
    """Train one epoch on every rank's batches (``steps``: the train and eval steps), then
    score the validation subset; the epoch's history row (the same on every rank)."""
    train_step, eval_step = steps
    lr = learning_rate(exp, epoch, dist.size)
    optimizer.learning_rate.assign(lr)
    t0 = time.perf_counter()
    progress = (
        Progress(log, f"epoch {epoch + 1}/{exp.epochs}", data.steps) if dist.is_chief else None
    )
    losses = []
    for s, batch in enumerate(data.train_data.epoch(epoch)):
        losses.append(float(train_step(*batch)))
        if progress:
            progress.update(s + 1, " steps", f"loss {np.mean(losses[-50:]):.3f}")
    # BatchNorm statistics of all ranks' batches (a frozen backbone's stay as they are)
    dist.sync([v for v in model.non_trainable_variables if "moving_" in v.path])
    seconds = time.perf_counter() - t0
    err, n = 0.0, 0.0
    for inputs, y in data.val_ds:
        e, k = eval_step(inputs, y)
        err, n = err + float(e), n + float(k)
    total = dist.average(n)
    return {
        "epoch": epoch + 1,
        "loss": dist.average(float(np.mean(losses))),
        "val_mae": dist.average(err) / total if total else float("nan"),
        "lr": lr,
        "seconds": round(seconds, 2),
        "images_per_s": round(data.steps * data.train_data.batch_size * dist.size / seconds, 1),
    }


def _train(
    exp: Experiment,
    shards: list[str],
    split: pd.DataFrame,
    out_dir: str,
    dist: Distribution,
    device: str,
) -> dict[str, Any]:
    """The training loop of :func:`run_training` (devices and precision already set):
    build or resume, one epoch at a time with a checkpoint after each, then finish."""
    import keras

    from boneage.losses import loss_function

    out = Path(out_dir)
    ckpt_dir = out / "checkpoint"
    keras.utils.set_random_seed(exp.seed + dist.rank)
    data = _inputs(exp, shards, split, dist, int(exp.batch_size))  # resolved: a number
    model, optimizer, start_epoch, history = _build_or_resume(exp, data, ckpt_dir, dist)
    steps_by_phase: dict[bool, Any] = {}

    def step_for(epoch: int):
        """The train step of an epoch: the head alone while the backbone is frozen."""
        frozen = epoch < exp.freeze_epochs
        freeze_backbone(model, frozen)
        if frozen not in steps_by_phase:
            steps_by_phase[frozen] = make_train_step(
                model, optimizer, dist, loss_function(exp.loss), exp.xla, exp.backbone_lr_scale
            )
        return steps_by_phase[frozen]

    _log_start(exp, data, dist, device)
    eval_step = _eval_step(model)
    best = min((h["val_mae"] for h in history), default=float("inf"))
    for epoch in range(start_epoch, exp.epochs):
        row = _one_epoch(exp, epoch, model, optimizer, (step_for(epoch), eval_step), data, dist)
        history.append(row)
        rng = dist.gather(rng_state(model))  # every rank's dropout generator
        if dist.is_chief:
            log.info(
                f"epoch {epoch + 1}/{exp.epochs} loss {row['loss']:.3f} val_mae "
                f"{row['val_mae']:.2f} lr {row['lr']:.2e} {row['images_per_s']:.0f} img/s"
            )
            with unfrozen(model):  # saved whole: the optimizer knows every variable
                if row["val_mae"] < best:
                    best = row["val_mae"]
                    save_keras(model.save_weights, ckpt_dir / "best.weights.h5")
                save_keras(model.save, ckpt_dir / "last.keras")
            state = {"epoch": epoch, "history": history, "key": data.key, "inputs": data.made_of}
            write_json(ckpt_dir / "state.json", {**state, "rng": rng})
    return _finish(exp, model, data, history, best, out, dist, device)


def _finish(
    exp: Experiment,
    model,
    data: _Inputs,
    history: list[dict[str, Any]],
    best: float,
    out: Path,
    dist: Distribution,
    device: str,
) -> dict[str, Any]:
    """The summary; on the chief, the best epoch's model, its history and train.json, and
    the checkpoint removed (a finished run leaves nothing a later run could resume)."""
    from boneage.models import weights_digest

    # Where each rank ran, and a digest of its final weights: equal on every rank.
    places = dist.gather((socket.gethostname(), weights_digest(model), rank_gpu(dist.local_rank)))
    summary = {
        "experiment": asdict(exp),
        "n_train": data.n_train,
        "n_val": len(data.val_ids),
        "train_mean": data.mean,
        "train_sd": data.sd,
        "world_size": dist.size,
        "hosts": [host for host, _, _ in places],
        "rank_weights": [digest for _, digest, _ in places],
        "rank_gpus": [f"{host}:{gpu}" if gpu else None for host, _, gpu in places],
        "device": device,
        "gpu_peak_mb": gpu_peak_mb(),  # the chief's; None on CPU
        "best_val_mae": best,
        "epochs_run": len(history),
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "inputs": data.made_of,  # digests of what made the model (boneage.provenance)
        "run_key": data.key,
        "versions": package_versions(),
    }
    if dist.is_chief:
        ckpt_dir = out / "checkpoint"
        if (ckpt_dir / "best.weights.h5").exists():
            model.load_weights(ckpt_dir / "best.weights.h5")
        summary["model_digest"] = weights_digest(model)  # what predictions record
        freeze_backbone(model, False)
        save_keras(model.save, out / "model.keras")
        write_tsv(out / "history.tsv", pd.DataFrame(history))
        write_json(out / "train.json", summary)
        shutil.rmtree(ckpt_dir)
    return summary


def freeze_backbone(model, frozen: bool) -> None:
    """Freeze (or unfreeze) the pretrained backbone: while frozen its variables do not
    train and its BatchNorm layers run in inference mode (Keras' rule for a frozen layer)."""
    from boneage.models import backbone_layers

    for layer in backbone_layers(model):
        layer.trainable = not frozen


@contextlib.contextmanager
def unfrozen(model):
    """The model with every layer trainable for a while (to save it whole), then as it was."""
    from boneage.models import backbone_layers

    was = [(layer, layer.trainable) for layer in backbone_layers(model)]
    freeze_backbone(model, False)
    try:
        yield model
    finally:
        for layer, trainable in was:
            layer.trainable = trainable


def rng_state(model) -> dict[str, list[int]]:
    """The states of a model's Keras seed generators (its dropout masks).

    ``model.save`` does not keep them; a checkpoint does, so a resumed run
    draws the masks an uninterrupted one would.
    """
    return {v.path: np.asarray(v).tolist() for v in model.variables if "seed_generator" in v.path}


def set_rng_state(model, state: dict[str, list[int]]) -> None:
    """Restore :func:`rng_state`."""
    for v in model.variables:
        if v.path in state:
            v.assign(np.asarray(state[v.path], dtype=v.dtype))


def checkpoint_state(
    state_file: Path, key: str, inputs: dict[str, Any], name: str, clear: bool
) -> dict[str, Any] | None:
    """The saved state of this run's checkpoint, or None to train from scratch.

    A checkpoint whose key differs (another run's data, settings, weights,
    world size or software) is discarded with a log line that says why; the
    chief (``clear``) removes its files.
    """
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:  # none, or the chief has just discarded it
        return None
    if state.get("key") == key:
        return state
    if clear:
        why = ", ".join(differences(state.get("inputs"), inputs))
        log.info(f"{name}: discarding the checkpoint of another run ({why} differ): training anew")
        shutil.rmtree(state_file.parent)
    return None


def save_keras(save, path: Path) -> None:
    """Atomically save with a Keras ``save``/``save_weights`` (which insist on the suffix)."""
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    with atomic_path(path) as tmp:
        staged = tmp.with_name(tmp.name + suffix)
        save(str(staged))
        os.replace(staged, tmp)
