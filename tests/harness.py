"""What several test files share: the tiny workflow's config, fake results, run copies, a fake GPU.

Run the workflow with :func:`boneage.workflow_run.snakemake`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from boneage.aggregate import aggregate
from boneage.atomic import write_json, write_tsv
from boneage.config import validate
from boneage.weights import IMAGENET

#: The tiny workflow: 48 synthetic films at 32 px, 3 Zarr shards, one quick experiment.
TINY = {
    "cohorts": {"tiny": {"source": "synthetic", "n": 48, "seed": 3, "nonhand_share": 0.1}},
    "train_cohorts": ["tiny"],
    "image_size": 32,
    "shards": {"format": "zarr", "size": 16},
    "split": {"val": 0.2, "test": 0.3},
    "experiments": {"quick": {"epochs": 2, "batch_size": 8}},
}

EVIL = "<script>alert(1)</script>"


#: The run config of :func:`fake_results` (one cohort, one experiment), defaults filled in.
FAKE_RUN = validate(
    {
        "cohorts": {"c1": {"source": "synthetic", "n": 60}},
        "train_cohorts": ["c1"],
        "experiments": {"e1": {}},
        "predict": {"calibrate": False},
    }
)


def fake_results(root: Path, n: int = 60) -> None:
    """Results of one cohort of ``n`` films and one experiment, written as the workflow
    would; ids hold HTML."""
    rng = np.random.default_rng(0)
    true = rng.uniform(10, 220, n)
    pred = pd.DataFrame(
        {
            "id": [EVIL] + [str(i) for i in range(1, n)],
            "row": range(1, n + 1),
            "sex": rng.choice(["M", "F"], n),
            "boneage": true + rng.normal(0, 6, n),
            "true_boneage": true,
            "pred": true + rng.normal(0, 8, n),
            "model_digest": "5eed0000000000d1",
        }
    )
    split = pd.DataFrame(
        {"id": pred["id"], "patient": pred["id"], "subset": rng.choice(["train", "val", "test"], n)}
    )
    frame, result = aggregate([pred], split, 120.0, trained_on_cohort=True)
    result.update(cohort="c1", experiment="e1")
    write_tsv(root / "predictions/e1/c1.tsv", frame)
    write_json(root / "metrics/e1/c1.json", result)
    manifest = pd.DataFrame(
        {
            "row": [1, 2, 3],
            "id": [EVIL, "b", "c"],
            "status": ["accepted", "rejected", "rejected"],
            "reason": [None, "no_hand", "missing_file"],
            "inverted": [True, False, False],
            "label_status": ["corrected", "range", "unparseable"],
            "correction": ["update", None, None],
        }
    )
    write_tsv(root / "cohorts/c1/manifest.tsv", manifest)
    write_json(root / "cohorts/c1/index.json", {"shards": []})
    write_tsv(
        root / "models/e1/history.tsv",
        pd.DataFrame({"epoch": [1, 2], "loss": [30.0, 20.0], "val_mae": [25.0, 18.0]}),
    )
    write_json(
        root / "models/e1/train.json",
        {
            "experiment": {"backbone": "small_cnn", "image_size": 32},
            "epochs_run": 2,
            "n_train": 40,
            "world_size": 1,
            "best_val_mae": 18.0,
            "train_seconds": 3.0,
            "model_digest": "5eed0000000000d1",
            "inputs": {
                "settings": "a" * 64,
                "data": "b" * 64,
                "weights": "random",
                "world_size": 1,
            },
        },
    )


def copy_run(work: Path, dest: Path) -> Path:
    """A copy of a run (mtimes kept) without its predictions and Slurm logs, to predict again."""
    shutil.copytree(work, dest, symlinks=True)
    shutil.rmtree(dest / "results/predictions")
    shutil.rmtree(dest / "logs/slurm", ignore_errors=True)
    return dest


KERAS_NETS = {  # backbone -> (keras.applications module, its class)
    "resnet50": ("resnet", "ResNet50"),
    "vgg16": ("vgg16", "VGG16"),
    "vgg19": ("vgg19", "VGG19"),
    "inceptionv3": ("inception_v3", "InceptionV3"),
    "efficientnetb0": ("efficientnet", "EfficientNetB0"),
}


def cached_imagenet_file(keras_home: Path, backbone: str):
    """The file Keras' cache holds for ``backbone`` (exact name), written from a randomly
    initialised notop network in Keras' own h5 layout; the network, to compare with."""
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    module, cls = KERAS_NETS[backbone]
    image_size = 75 if backbone == "inceptionv3" else 32  # notop weights fit any size
    keras.utils.set_random_seed(7)
    net = getattr(keras.applications, cls)(
        include_top=False, weights=None, input_shape=(image_size, image_size, 3), pooling="avg"
    )
    path = keras_home / "models" / IMAGENET[backbone].name
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, net)
    return path, net


def fake_gpu(tmp_path, monkeypatch, mb: int) -> None:
    """nvidia-smi as a GPU node's answers it (this machine has none)."""
    tool = tmp_path / f"gpu{mb}" / "nvidia-smi"
    tool.parent.mkdir()
    tool.write_text(
        "#!/bin/sh\n"
        'case "$1" in -L) echo "GPU 0: NVIDIA A100 (UUID: GPU-0)";; '
        f"*) echo {mb};; esac\n"
    )
    tool.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{tool.parent}:/usr/bin:/bin")
