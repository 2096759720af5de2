"""Starting weights of a backbone: random, a local file, or ImageNet's from the Keras cache.

``weights: imagenet`` reads the exact file Keras itself downloads for the
backbone's "notop" network, from Keras' cache (``$KERAS_HOME/models``,
default ``~/.keras/models``). The workflow never downloads: compute nodes
often have no internet, and a run should not depend on it. On a machine
with internet (a login node), ``boneage fetch-weights`` downloads the files
into that cache, checking Keras' published MD5, and every job reads them
there. A missing file stops the workflow at its start, naming the file and
the command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class ImageNetFile:
    """One backbone's ImageNet "notop" weights, as ``keras.applications`` fetches them."""

    name: str  # the file name in the Keras cache
    origin: str
    md5: str  # Keras' own file_hash for it


#: As in keras/src/applications/<net>.py (Keras 3.x); tests/unit/test_weights.py checks them.
IMAGENET = {
    "resnet50": ImageNetFile(
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{KERAS_APPS}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "vgg16": ImageNetFile(
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{KERAS_APPS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "vgg19": ImageNetFile(
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{KERAS_APPS}/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
    ),
    "inceptionv3": ImageNetFile(
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{KERAS_APPS}/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
    "efficientnetb0": ImageNetFile(
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
}


class WeightsMissing(FileNotFoundError):
    """The starting weights an experiment names are not on this machine."""


def keras_cache() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` (default ~/.keras/models)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "models"


def imagenet_file(backbone: str) -> Path:
    """The cache path of a backbone's ImageNet weights (ValueError: it has none)."""
    if backbone not in IMAGENET:
        raise ValueError(
            f"{backbone} has no ImageNet weights; pretrained backbones: {', '.join(IMAGENET)}"
        )
    return keras_cache() / IMAGENET[backbone].name


def weights_file(weights: str | None, backbone: str) -> str | None:
    """The file a backbone starts from: None for random weights.

    ``imagenet`` is the cached Keras file; anything else is a local path.
    Raises :class:`WeightsMissing` (naming the file and the command that
    fetches it) when the file is not there.
    """
    if weights in (None, "", "random"):
        return None
    if backbone == "small_cnn":
        raise ValueError("small_cnn has no pretrained weights; use weights: random")
    if weights == "imagenet":
        path = imagenet_file(backbone)
        if not path.is_file():
            raise WeightsMissing(
                f"the ImageNet weights of {backbone} are not in the Keras cache: {path} is "
                f"missing. On a machine with internet (the login node), run "
                f"`boneage fetch-weights --backbone {backbone}`; it downloads them there, "
                f"and every job reads them from there (KERAS_HOME, if set, must be the same)"
            )
        return str(path)
    if not os.path.isfile(weights):
        raise WeightsMissing(f"weights file {weights} not found (nothing is downloaded)")
    return weights


def weights_problem(name: str, exp: dict[str, Any]) -> str | None:
    """The problem with an experiment's starting weights, else None (for config checks)."""
    try:
        weights_file(exp.get("weights"), exp.get("backbone", "small_cnn"))
    except (WeightsMissing, ValueError) as exc:
        return f"experiments.{name}.weights: {exc}"
    return None


def fetch(backbone: str) -> Path:
    """Download a backbone's ImageNet weights into the Keras cache (MD5 checked); its path."""
    import keras

    spec = IMAGENET[backbone]
    imagenet_file(backbone).parent.mkdir(parents=True, exist_ok=True)
    path = keras.utils.get_file(
        spec.name,
        spec.origin,
        cache_dir=str(keras_cache().parent),
        cache_subdir="models",
        file_hash=spec.md5,
    )
    return Path(path)
