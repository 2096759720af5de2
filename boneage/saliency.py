"""Saliency maps of example predictions: where the model looked.

For the typical (median absolute error) and worst held-out images of a
cohort, SmoothGrad saliency: the absolute gradient of the predicted bone age
with respect to the input image, averaged over a few noisy copies and
smoothed, scaled to [0, 255].
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from boneage.atomic import atomic_path

EXAMPLES = 4


def select_examples(frame: pd.DataFrame, n: int = EXAMPLES) -> pd.DataFrame:
    """``n`` typical and ``n`` worst held-out predictions (column ``kind``)."""
    held = frame[frame.get("subset", "test") == "test"] if "subset" in frame else frame
    if held.empty:
        held = frame
    held = held[held["boneage"].notna()].copy()
    held["abs_err"] = (held["pred"] - held["boneage"]).abs()
    worst = held.nlargest(n, "abs_err").assign(kind="worst")
    rest = held.drop(worst.index)
    typical = rest.iloc[(rest["abs_err"] - rest["abs_err"].median()).abs().argsort()[:n]]
    return pd.concat([typical.assign(kind="typical"), worst])


def saliency_maps(
    model, images: np.ndarray, sex: np.ndarray, samples: int = 8, noise: float = 0.05, seed: int = 0
) -> np.ndarray:
    """SmoothGrad maps (uint8, shape (B, S, S)) of ``months`` w.r.t. float images (B, S, S, 1)."""
    import tensorflow as tf

    from boneage.preprocess import blur_image

    rng = np.random.default_rng(seed)
    x = tf.constant(images, tf.float32)
    s = tf.constant(sex, tf.float32)
    total = np.zeros(images.shape[:3], np.float32)
    for _ in range(samples):
        noisy = x + rng.normal(0, noise, images.shape).astype(np.float32)
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            out = tf.reduce_sum(model({"image": noisy, "sex": s}, training=False)["months"])
        total += np.abs(tape.gradient(out, noisy).numpy()[..., 0])
    maps = np.stack([blur_image(m, 1.0) for m in total])
    top = np.percentile(maps.reshape(len(maps), -1), 99.5, axis=1)[:, None, None]
    return np.clip(maps / np.maximum(top, 1e-12) * 255, 0, 255).astype(np.uint8)


def explain_cohort(
    model_path: str | os.PathLike[str],
    predictions: pd.DataFrame,
    shards: list[str],
    out: str | os.PathLike[str],
) -> int:
    """Write examples and their saliency maps of one cohort to ``out`` (.npz); return count."""
    from boneage.models import load_model
    from boneage.predict import to_model_input
    from boneage.shards import read_shard, stored_size

    chosen = select_examples(predictions)
    wanted = dict(zip(chosen["id"].astype(str), range(len(chosen))))
    side = stored_size(shards) or 1
    images = np.zeros((len(chosen), side, side, 1), np.uint8)
    for path in shards:
        shard = read_shard(path)
        for i, sid in enumerate(shard.ids):
            if sid in wanted:
                images[wanted[sid]] = shard.images[i]
    model = load_model(model_path)
    size = model.input["image"].shape[1]
    x = to_model_input(model, images)
    sex = (chosen["sex"] == "M").astype(np.float32).to_numpy()[:, None]
    maps = saliency_maps(model, x, sex) if len(chosen) else np.zeros((0, size, size), np.uint8)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            # plain string arrays: the report loads this file without pickle
            np.savez_compressed(
                fh,
                ids=np.asarray(chosen["id"], dtype=str),
                kind=np.asarray(chosen["kind"], dtype=str),
                sex=np.asarray(chosen["sex"], dtype=str),
                label=chosen["boneage"].to_numpy(),
                pred=chosen["pred"].to_numpy(),
                images=(x[..., 0] * 255).astype(np.uint8),
                maps=maps,
            )
    return len(chosen)
