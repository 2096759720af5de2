"""What made an output: digests of a model's inputs and settings, and package versions.

A trained model records these in ``train.json``; its checkpoint is keyed by
them, so a checkpoint left by another run (other data, settings, weights
file, world size or software) is never resumed. Predictions and metrics
record the digest of the model they came from. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from boneage import __version__

#: Packages whose versions shape results (recorded in train.json and the report).
PACKAGES = (
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "horovod",
    "snakemake",
    "zarr",
    "h5py",
    "numpy",
    "pandas",
    "pillow",
    "mpi4py",
)
#: Of those, the ones a checkpoint must share with the run that resumes it.
KEY_PACKAGES = ("boneage", "python", "tensorflow", "tensorflow-cpu", "keras", "numpy")
#: The parts of a training run's inputs, in the order the report shows them.
INPUT_PARTS = ("settings", "data", "weights", "world_size", "versions")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(value: Any) -> str:
    """SHA-256 (hex) of a JSON value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """Installed versions of boneage, Python and the packages that shape results."""
    out = {"boneage": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_digest(shard_digests: Iterable[str], split: pd.DataFrame) -> str:
    """One digest of what training reads: its shards' contents, in order, and the split."""
    h = hashlib.sha256()
    for d in shard_digests:
        h.update(f"{d}\n".encode())
    h.update(split.to_csv(sep="\t", index=False, lineterminator="\n").encode())
    return h.hexdigest()


def weights_file_digest(weights: str | None, backbone: str) -> str:
    """The starting weights: the SHA-256 of the file they come from (``imagenet``: the
    cached Keras file), or ``random``."""
    from boneage.weights import weights_file

    path = weights_file(weights, backbone)
    return sha256_file(path) if path else "random"


def training_inputs(
    settings: Mapping[str, Any],
    shard_digests: Sequence[str],
    split: pd.DataFrame,
    world_size: int,
) -> dict[str, Any]:
    """Digests of everything that determines a trained model (:data:`INPUT_PARTS`).

    ``settings`` are the experiment's resolved settings (its name aside: a
    renamed experiment trains the same model).
    """
    versions = package_versions()
    return {
        "settings": sha256_json({k: v for k, v in settings.items() if k != "name"}),
        "data": data_digest(shard_digests, split),
        "weights": weights_file_digest(settings.get("weights"), settings["backbone"]),
        "world_size": int(world_size),
        "versions": sha256_json({k: versions.get(k) for k in KEY_PACKAGES}),
    }


def run_key(inputs: Mapping[str, Any]) -> str:
    """The key of a training run: equal for two runs exactly when their inputs are."""
    return sha256_json({k: inputs.get(k) for k in INPUT_PARTS})


def differences(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """The input parts in which two runs differ (all of them when ``old`` is unknown)."""
    if not old:
        return ["unrecorded inputs"]
    return [k for k in INPUT_PARTS if old.get(k) != new.get(k)]


def short(digest: str | None, n: int = 12) -> str:
    """A digest shortened for display (``-`` when absent)."""
    return str(digest)[:n] if digest else "-"


def model_digest_of(predictions: pd.DataFrame) -> str | None:
    """The one model digest a predictions table records (None if it records none).

    Raises ValueError when its rows name more than one model: parts made by
    different models must never be scored together.
    """
    if "model_digest" not in predictions or predictions.empty:
        return None
    found = sorted(set(predictions["model_digest"].astype(str)))
    if len(found) > 1:
        raise ValueError(f"predictions made by {len(found)} different models: {', '.join(found)}")
    return found[0]


def ensemble_digest(member_digests: Sequence[str | None]) -> str:
    """The digest of an ensemble: its members' model digests, in order."""
    return hashlib.sha256("|".join(str(d) for d in member_digests).encode()).hexdigest()[:16]
