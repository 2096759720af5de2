"""Training losses on model outputs (dicts with ``"months"``, maybe ``"logits"``).

* ``mae``: mean absolute error in months (the challenge metric);
* ``mse``: mean squared error, scaled by 1/100 months^2 to keep gradients sane;
* ``classification``: cross-entropy over 6-month age bins against a soft
  label (a Gaussian of one bin width around the reading); the model predicts
  the expected value of the bins.
"""

from __future__ import annotations

from collections.abc import Callable

from boneage.models import BIN_CENTRES, BIN_WIDTH

LOSSES = ("mae", "mse", "classification")


def loss_function(kind: str) -> Callable:
    """``loss(outputs, y)`` for ``kind``; ``y`` is float32 (B, 1) in months."""
    import tensorflow as tf

    if kind == "mae":
        return lambda out, y: tf.reduce_mean(tf.abs(out["months"] - y))
    if kind == "mse":
        return lambda out, y: tf.reduce_mean(tf.square(out["months"] - y)) / 100.0
    if kind == "classification":
        centres = tf.constant(BIN_CENTRES)

        def soft_ce(out, y):
            target = tf.exp(-0.5 * tf.square((centres[None, :] - y) / BIN_WIDTH))
            target /= tf.reduce_sum(target, axis=-1, keepdims=True)
            return tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=out["logits"])
            )

        return soft_ce
    raise ValueError(f"unknown loss {kind!r}; choose from {LOSSES}")
