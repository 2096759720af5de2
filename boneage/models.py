"""Keras 3 bone-age regressors with an image input and a sex input.

Every model maps ``{"image": float32 (B, S, S, 1) in [0, 1], "sex": float32
(B, 1) with 1 = male}`` to bone age in months (B, 1). The last layer is
:class:`OutputScale`, so the network itself works on a standardised target.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="boneage")
class OutputScale(layers.Layer):
    """``y = offset + scale * x``: standardised output back to months."""

    def __init__(self, offset: float, scale: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.offset = float(offset)
        self.scale = float(scale)

    def call(self, x):
        return x * self.scale + self.offset

    def get_config(self) -> dict:
        return {**super().get_config(), "offset": self.offset, "scale": self.scale}


def _conv_block(x, filters: int, name: str):
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)  # few steps/epoch
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def small_cnn_features(image):
    """A small VGG-style CNN (~0.3 M parameters) that trains on 2 CPU cores in minutes."""
    x = layers.Conv2D(24, 5, strides=2, padding="same", activation="relu", name="stem")(image)
    for i, filters in enumerate((32, 48, 64, 96)):
        x = _conv_block(x, filters, f"block{i + 1}")
    return layers.Concatenate(name="pool")([layers.GlobalAveragePooling2D()(x),
                                            layers.GlobalMaxPooling2D()(x)])


BACKBONES: dict[str, Callable] = {"small_cnn": small_cnn_features}


def load_model(path) -> keras.Model:
    """Load a saved boneage model (this module registers its custom layers)."""
    return keras.models.load_model(path)


def build_model(backbone: str, image_size: int, target_mean: float = 127.0,
                target_sd: float = 41.0, dropout: float = 0.2) -> keras.Model:
    """Build a regressor; ``target_mean``/``target_sd`` set the output scale (months)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    image = keras.Input((image_size, image_size, 1), name="image")
    sex = keras.Input((1,), name="sex")
    features = BACKBONES[backbone](image)
    s = layers.Dense(16, activation="relu", name="sex_dense")(sex)
    x = layers.Concatenate(name="joint")([features, s])
    x = layers.Dense(128, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(1, name="head_out")(x)
    out = OutputScale(target_mean, target_sd, name="months")(x)
    return keras.Model({"image": image, "sex": sex}, out, name=f"boneage_{backbone}")
