"""tf.data pipelines that stream examples from shards.

Shards are read one at a time (shuffled shard order, then a shuffle buffer),
so memory stays bounded by a few shards whatever the cohort size; when the
selected examples fit in ``cache_mb`` they are cached after the first epoch.
Augmentation runs on whole batches: a random affine warp (rotation, scale,
shift) and brightness/contrast jitter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from boneage.shards import read_shard, stored_size


def _examples(
    paths: Sequence[str], keep: set[str] | None, shuffle: bool, seed: int
) -> Iterator[tuple[np.ndarray, np.float32, np.float32]]:
    order = np.random.default_rng(seed).permutation(len(paths)) if shuffle else range(len(paths))
    for i in order:
        shard = read_shard(paths[i])
        for j, sid in enumerate(shard.ids):
            if keep is None or sid in keep:
                yield shard.images[j], np.float32(shard.sex[j]), np.float32(shard.boneage[j])


def warp(images: tf.Tensor, angle: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """Rotate (radians), scale and shift (pixels, (B, 2)) a batch (B, S, S, 1) about its centre."""
    b = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    c, s = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1.0) / 2.0
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    a2 = centre - c * centre + s * centre - shift[:, 0]
    b2 = centre - s * centre - c * centre - shift[:, 1]
    zeros = tf.zeros([b])
    transforms = tf.stack([c, -s, a2, s, c, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


#: Test-time augmentation views: (rotation in degrees, scale).
TTA_VIEWS = ((0.0, 1.0), (-6.0, 1.0), (6.0, 1.0), (0.0, 0.94), (0.0, 1.06))


def tta_views(images: tf.Tensor) -> list[tf.Tensor]:
    """The fixed test-time views of a batch (the first is the image itself)."""
    b = tf.shape(images)[0]
    return [
        warp(images, tf.fill([b], deg * math.pi / 180), tf.fill([b], scale), tf.zeros([b, 2]))
        for deg, scale in TTA_VIEWS
    ]


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    max_rotation: float = 15.0,
    max_scale: float = 0.1,
    max_shift: float = 0.06,
) -> tf.Tensor:
    """Random affine warp + brightness/contrast of a float batch (B, S, S, 1) in [0, 1]."""
    b = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 6)
    angle = tf.random.stateless_uniform([b], seeds[0], -1.0, 1.0) * max_rotation * math.pi / 180
    scale = 1.0 + tf.random.stateless_uniform([b], seeds[1], -max_scale, max_scale)
    shift = tf.random.stateless_uniform([b, 2], seeds[2], -max_shift, max_shift) * size
    warped = warp(images, angle, scale, shift)
    gain = 1.0 + tf.random.stateless_uniform([b, 1, 1, 1], seeds[3], -0.15, 0.15)
    bias = tf.random.stateless_uniform([b, 1, 1, 1], seeds[4], -0.08, 0.08)
    gamma = tf.exp(tf.random.stateless_uniform([b, 1, 1, 1], seeds[5], -0.2, 0.2))
    return tf.clip_by_value(
        tf.pow(tf.clip_by_value(warped, 1e-4, 1.0), gamma) * gain + bias, 0.0, 1.0
    )


def make_dataset(
    paths: Sequence[str | os.PathLike[str]],
    image_size: int,
    batch_size: int,
    keep: set[str] | None = None,
    training: bool = False,
    augment: bool = True,
    seed: int = 0,
    cache_mb: float = 2048.0,
    n_examples: int | None = None,
    rank_slice: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of ``({"image", "sex"}, boneage)`` from shards.

    ``keep`` restricts to those study ids (a split subset); ``rank_slice``
    (rank, size) keeps every size-th example for one rank. A training dataset
    is shuffled, augmented (unless ``augment`` is False) and repeats forever
    (take ``steps_per_epoch`` batches per epoch); others run once, in order.
    ``seed`` fixes shard order, shuffle and augmentation.
    """
    paths = [str(p) for p in paths]
    stored = stored_size(paths) or image_size
    signature = (
        tf.TensorSpec((stored, stored, 1), tf.uint8),
        tf.TensorSpec((), tf.float32),
        tf.TensorSpec((), tf.float32),
    )
    calls = [0]  # a new shard order on every pass over the data

    def generate():
        calls[0] += 1
        return _examples(paths, keep, training, seed * 1000 + calls[0])

    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if rank_slice is not None:
        ds = ds.shard(rank_slice[1], rank_slice[0])
    if n_examples is not None and n_examples * stored * stored / 2**20 <= cache_mb:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size)

    def to_inputs(img, sex, y):
        x = tf.cast(img, tf.float32) / 255.0
        if stored != image_size:  # an experiment may use another input size than the shards
            x = tf.image.resize(x, (image_size, image_size), antialias=True)
        return {"image": x, "sex": sex[:, None]}, y[:, None]

    ds = ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment:
        counter = tf.data.Dataset.counter()
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda xy, i: (
                {"image": augment_batch(xy[0]["image"], tf.stack([seed, i])), "sex": xy[0]["sex"]},
                xy[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
