"""tf.data pipelines that feed training and validation from shards.

Training data (:class:`TrainingData`) is built per epoch from the seed and
the epoch number alone, so a resumed run trains on the same batches as an
uninterrupted one. A rank's examples are held in memory when they fit in
``cache_mb`` (a fresh permutation each pass); otherwise shards are read one
at a time (a per-epoch shard order, then a shuffle buffer), so memory stays
bounded by a few shards whatever the cohort size. Augmentation runs on whole
batches: a random affine warp (rotation, scale, shift) and
brightness/contrast jitter, seeded per (epoch, step).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from boneage.shards import read_shard, stored_size


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
    rank_slice: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of ``({"image", "sex"}, boneage)`` from shards, once, in order (validation).

    ``keep`` restricts to those study ids (a split subset); ``rank_slice``
    (rank, size) keeps every size-th of them for one rank.
    """
    names = [str(p) for p in paths]
    stored = stored_size(names) or image_size
    picks = select_examples(names, keep, rank_slice)

    def generate():
        for path, rows in zip(names, picks):
            if len(rows):
                shard = read_shard(path)
                for j in rows:
                    yield shard.images[j], np.float32(shard.sex[j]), np.float32(shard.boneage[j])

    ds = tf.data.Dataset.from_generator(generate, output_signature=_signature(stored, False))
    ds = ds.batch(batch_size).map(
        _to_inputs(stored, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def select_examples(
    paths: Sequence[str], keep: set[str] | None, rank_slice: tuple[int, int] | None
) -> list[np.ndarray]:
    """Per shard, the positions of the examples a rank reads.

    ``keep``'s ids, then with ``rank_slice`` (rank, size) every size-th of them
    counted over the shards in the order given: the same on every rank, so
    the ranks' examples are disjoint and together all of them.
    """
    picks, seen = [], 0
    for path in paths:
        ids = read_shard(path, images=False).ids
        rows = np.array([j for j, sid in enumerate(ids) if keep is None or sid in keep], np.int64)
        if rank_slice is not None:
            rank, size = rank_slice
            mine = (seen + np.arange(len(rows))) % size == rank
            seen += len(rows)
            rows = rows[mine]
        picks.append(rows)
    return picks


class TrainingData:
    """One rank's training batches, epoch by epoch.

    Epoch ``e``'s batches depend on ``(seed, e)`` alone (example order,
    shuffle and augmentation), never on what ran before in the process: a
    run resumed after epoch ``e - 1`` sees exactly the batches an
    uninterrupted run would. When the rank's examples fit in ``cache_mb``
    they are read once and each epoch draws a fresh permutation of all of
    them; otherwise shards stream in a per-epoch order through a shuffle
    buffer, so memory stays bounded by a few shards. An epoch is ``steps``
    batches (None: endless); it wraps into a new pass when the rank's
    examples run out.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        image_size: int,
        batch_size: int,
        seed: int,
        keep: set[str] | None = None,
        augment: bool = True,
        steps: int | None = None,
        rank_slice: tuple[int, int] | None = None,
        cache_mb: float = 2048.0,
    ) -> None:
        self.paths = [str(p) for p in paths]
        self.image_size, self.batch_size, self.seed = image_size, batch_size, seed
        self.augment, self.steps = augment, steps
        self.stored = stored_size(self.paths) or image_size
        self.picks = select_examples(self.paths, keep, rank_slice)
        self.n = int(sum(len(p) for p in self.picks))
        if not self.n:
            raise ValueError("this rank has no training examples")
        fits = self.n * self.stored**2 / 2**20 <= cache_mb
        self.memory = self._load() if fits else None

    def _load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every picked example in memory: images, sex, labels."""
        parts = []
        for path, rows in zip(self.paths, self.picks):
            if len(rows):
                s = read_shard(path)
                parts.append((s.images[rows], s.sex[rows], s.boneage[rows]))
        images, sex, y = (np.concatenate(x) for x in zip(*parts))
        return images, sex.astype(np.float32), y.astype(np.float32)

    def _batches_in_memory(self, epoch: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Whole batches from the examples in memory, a fresh permutation per pass."""
        assert self.memory is not None, "called only when the examples fit in memory"
        images, sex, y = self.memory
        queue, n_pass = np.empty(0, np.int64), 0
        while True:
            while len(queue) < self.batch_size:
                rng = np.random.default_rng([self.seed, epoch, n_pass])
                queue, n_pass = np.concatenate([queue, rng.permutation(self.n)]), n_pass + 1
            take, queue = np.sort(queue[: self.batch_size]), queue[self.batch_size :]
            yield images[take], sex[take], y[take]

    def _streamed_examples(self, epoch: int) -> Iterator[tuple[Any, ...]]:
        """Examples shard by shard, the shards in a per-epoch (and per-pass) order."""
        n_pass = 0
        while True:
            rng = np.random.default_rng([self.seed, epoch, n_pass])
            for k in rng.permutation(len(self.paths)):
                if len(self.picks[k]):
                    s = read_shard(self.paths[k])
                    for j in self.picks[k]:
                        yield s.images[j], np.float32(s.sex[j]), np.float32(s.boneage[j])
            n_pass += 1

    def epoch(self, epoch: int) -> tf.data.Dataset:
        """The batches of epoch ``epoch`` (0-based)."""
        if self.memory is not None:
            ds = tf.data.Dataset.from_generator(
                lambda: self._batches_in_memory(epoch),
                output_signature=_signature(self.stored, True),
            )
        else:
            ds = tf.data.Dataset.from_generator(
                lambda: self._streamed_examples(epoch),
                output_signature=_signature(self.stored, False),
            )
            shuffle_seed = int(np.random.default_rng([self.seed, epoch]).integers(2**31))
            ds = ds.shuffle(4096, seed=shuffle_seed).batch(self.batch_size)
        if self.steps is not None:
            ds = ds.take(self.steps)
        ds = ds.map(_to_inputs(self.stored, self.image_size), num_parallel_calls=tf.data.AUTOTUNE)
        if self.augment:
            first = epoch * 2**32  # every (epoch, step) its own augmentation
            seed = self.seed
            ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(first))).map(
                lambda xy, i: (
                    {
                        "image": augment_batch(xy[0]["image"], tf.stack([seed, i])),
                        "sex": xy[0]["sex"],
                    },
                    xy[1],
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return ds.prefetch(tf.data.AUTOTUNE)


def _signature(stored: int, batched: bool) -> tuple[tf.TensorSpec, ...]:
    lead = (None,) if batched else ()
    return (
        tf.TensorSpec(lead + (stored, stored, 1), tf.uint8),
        tf.TensorSpec(lead, tf.float32),
        tf.TensorSpec(lead, tf.float32),
    )


def _to_inputs(stored: int, image_size: int):
    """Batch (uint8 images, sex, label) -> model inputs, resized when sizes differ."""

    def to_inputs(img, sex, y):
        x = tf.cast(img, tf.float32) / 255.0
        if stored != image_size:  # an experiment may use another input size than the shards
            x = tf.image.resize(x, (image_size, image_size), antialias=True)
        return {"image": x, "sex": sex[:, None]}, y[:, None]

    return to_inputs
