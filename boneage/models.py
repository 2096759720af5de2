"""Keras 3 bone-age models with an image input and a sex input.

Every model maps ``{"image": float32 (B, S, S, 1) in [0, 1], "sex": float32
(B, 1) with 1 = male}`` to a dict with ``"months"`` (B, 1), the bone age;
classification models also return ``"logits"`` (B, K) over age bins and
predict the expected value of the bins.

Backbones: ``small_cnn`` (trains on 2 CPU cores in minutes), and from
``keras.applications`` ``resnet50``, ``inceptionv3`` (with a sex branch as
in the RSNA 2017 winning entry), ``efficientnetb0``, ``vgg16`` and ``vgg19``. Their
weights are random, a local file, or ImageNet's from the Keras cache
(:mod:`boneage.weights`: nothing is downloaded here). Each gets its input as
its own ``keras.applications.<net>.preprocess_input`` gives it.
``sex_mode="separate"`` builds two towers (one per sex) in one model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import keras
import numpy as np
from keras import layers, ops

from boneage.weights import weights_file

#: Age bins for classification: 6-month bins over 0-240 months.
BIN_WIDTH = 6.0
BIN_CENTRES = np.arange(BIN_WIDTH / 2, 240.0, BIN_WIDTH, dtype=np.float32)


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


@keras.saving.register_keras_serializable(package="boneage")
class ExpectedAge(layers.Layer):
    """Expected bone age (months) under the softmax of age-bin logits."""

    def call(self, logits):
        probs = ops.softmax(logits, axis=-1)
        return ops.sum(probs * ops.convert_to_tensor(BIN_CENTRES), axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="boneage")
class SexSelect(layers.Layer):
    """Pick the male tower's output where sex = 1, the female's where sex = 0."""

    def call(self, inputs):
        sex, male, female = inputs
        return sex * male + (1.0 - sex) * female


def _conv_block(x, filters: int, name: str):
    for i in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        # momentum 0.9: few steps per epoch on small cohorts
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def small_cnn(image, weights: str | None, prefix: str):
    """A small VGG-style CNN (~0.2 M parameters) for CPUs."""
    x = layers.Conv2D(24, 5, strides=2, padding="same", activation="relu", name=f"{prefix}stem")(
        image
    )
    for i, filters in enumerate((32, 48, 64, 96)):
        x = _conv_block(x, filters, f"{prefix}block{i + 1}")
    return layers.Concatenate(name=f"{prefix}pool")(
        [layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)]
    )


def _application(factory: Callable, scale: float, offset: tuple[float, float, float]) -> Callable:
    """Wrap a keras.applications network: grey -> 3 channels, its input range, avg pool.

    ``scale`` and the per-channel ``offset`` map [0, 1] to what the network's
    ``preprocess_input`` makes of the same grey image in 0-255 (tested).
    """

    def features(image, weights: str | None, prefix: str):
        x = layers.Concatenate(name=f"{prefix}grey_to_rgb")([image, image, image])
        x = layers.Rescaling(scale, list(offset), name=f"{prefix}input_range")(x)
        base = factory(
            include_top=False,
            weights=weights,
            input_shape=tuple(x.shape[1:]),
            pooling="avg",
            name=f"{prefix}{BACKBONE_NET}{factory.__name__.lower()}",
        )
        return base(x)

    return features


#: caffe-style networks (ResNet50, VGG): 0-255, BGR, less ImageNet's channel means.
CAFFE = (-103.939, -116.779, -123.68)
#: The name prefix of a keras.applications network inside a boneage model (its backbone).
BACKBONE_NET = "net_"
BACKBONES: dict[str, Callable] = {
    "small_cnn": small_cnn,
    "resnet50": _application(keras.applications.ResNet50, 255.0, CAFFE),
    "vgg16": _application(keras.applications.VGG16, 255.0, CAFFE),
    "vgg19": _application(keras.applications.VGG19, 255.0, CAFFE),
    "inceptionv3": _application(keras.applications.InceptionV3, 2.0, (-1.0,) * 3),  # [-1, 1]
    # EfficientNet normalises inside the network: 0-255 in
    "efficientnetb0": _application(keras.applications.EfficientNetB0, 255.0, (0.0,) * 3),
}
MIN_SIZE = {"inceptionv3": 75}
#: Dense layers after the features and units of the sex branch, per backbone.
HEADS = {"inceptionv3": ((1000, 1000), 32)}
DEFAULT_HEAD = ((128,), 16)


def _tower(
    image,
    sex,
    backbone: str,
    weights: str | None,
    loss: str,
    target_mean: float,
    target_sd: float,
    dropout: float,
    prefix: str,
) -> dict:
    """Backbone + sex branch + head for one tower; returns its outputs."""
    features = BACKBONES[backbone](image, weights, prefix)
    units, sex_units = HEADS.get(backbone, DEFAULT_HEAD)
    x = features
    if sex is not None:
        s = layers.Dense(sex_units, activation="relu", name=f"{prefix}sex_dense")(sex)
        x = layers.Concatenate(name=f"{prefix}joint")([features, s])
    for i, n in enumerate(units):
        x = layers.Dense(n, activation="relu", name=f"{prefix}head_dense{i}")(x)
    x = layers.Dropout(dropout, name=f"{prefix}head_dropout")(x)
    if loss == "classification":
        # Outputs in float32 under a mixed policy: softmax and the age scale need the range.
        logits = layers.Dense(len(BIN_CENTRES), dtype="float32", name=f"{prefix}logits")(x)
        return {
            "months": ExpectedAge(dtype="float32", name=f"{prefix}expected")(logits),
            "logits": logits,
        }
    x = layers.Dense(1, dtype="float32", name=f"{prefix}head_out")(x)
    return {
        "months": OutputScale(target_mean, target_sd, dtype="float32", name=f"{prefix}months")(x)
    }


def build_model(
    backbone: str,
    image_size: int,
    target_mean: float = 127.0,
    target_sd: float = 41.0,
    loss: str = "mae",
    sex_mode: str = "input",
    weights: str | None = None,
    dropout: float = 0.2,
) -> keras.Model:
    """Build a model; ``target_mean``/``target_sd`` set the regression output scale (months)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    if image_size < MIN_SIZE.get(backbone, 32):
        raise ValueError(f"{backbone} needs image_size >= {MIN_SIZE.get(backbone, 32)}")
    weights = weights_file(weights, backbone)
    image = keras.Input((image_size, image_size, 1), name="image")
    sex = keras.Input((1,), name="sex")
    args = (backbone, weights, loss, target_mean, target_sd, dropout)
    if sex_mode == "separate":
        male = _tower(image, None, *args, prefix="male_")
        female = _tower(image, None, *args, prefix="female_")
        outputs = {k: SexSelect(name=f"{k}_by_sex")([sex, male[k], female[k]]) for k in male}
    else:
        outputs = _tower(image, sex, *args, prefix="")
    return keras.Model({"image": image, "sex": sex}, outputs, name=f"boneage_{backbone}")


def load_model(path) -> keras.Model:
    """Load a saved boneage model (this module registers its custom layers)."""
    return keras.models.load_model(path)


def weights_digest(model: keras.Model) -> str:
    """A short hash of a model's weights, bit for bit: the model digest outputs record.

    Ranks in step hold equal ones; a saved and reloaded model keeps its digest.
    """
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def backbone_layers(model: keras.Model) -> list[keras.Layer]:
    """The pretrained-network layers of a model (one per sex tower; none for small_cnn)."""
    return [layer for layer in model.layers if BACKBONE_NET in layer.name]
