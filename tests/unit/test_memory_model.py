"""The model-based memory estimate: counts, the issue's VGG19 figures, GPU batch sizes."""

from __future__ import annotations

import pytest

from boneage.experiment import Experiment
from boneage.memory.model import (
    MB,
    ModelFootprint,
    experiment_footprint,
    gpu_batch_size,
    model_footprint,
    peak_memory,
)

GiB = 1024  # MB


def test_profile_counts_parameters_and_layer_outputs():
    import keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 8*8*4 = 256 floats, 40 parameters
    x = keras.layers.Flatten()(x)  # 256 floats
    out = keras.layers.Dense(2)(x)  # 2 floats, 514 parameters
    p = model_footprint(keras.Model(inp, out), "toy", 8)
    assert (p.params, p.trainable, p.activations) == (554, 554, 256 + 256 + 2)


def test_estimate_parts_scale_as_documented():
    p = ModelFootprint("toy", 64, params=1_000_000, trainable=1_000_000, activations=100_000)
    train = peak_memory(p, "train", 16, optimizer="adam")
    assert train.weights == pytest.approx(4e6 / MB)
    assert train.gradients == train.weights and train.optimizer == 2 * train.weights
    sgd = peak_memory(p, "train", 16, optimizer="sgd")
    assert sgd.optimizer == sgd.weights
    assert peak_memory(p, "train", 32).activations == pytest.approx(2 * train.activations)
    pred = peak_memory(p, "predict", 16, shard_images=256)
    assert pred.gradients == pred.optimizer == 0
    assert pred.activations < train.activations
    assert peak_memory(p, "predict", 16, shard_images=512).data > pred.data
    with pytest.raises(ValueError, match="no memory model"):
        peak_memory(p, "shard", 1)


def test_a_measured_train_step_replaces_the_model_at_its_batch():
    p = ModelFootprint(
        "toy", 64, 1_000_000, 1_000_000, 100_000, train_peak_mb=1500.0, probe_batch=16
    )
    measured = peak_memory(p, "train", 16, examples=1000)
    modelled = peak_memory(p, "train", 32, examples=1000)  # another batch: the model decides
    assert measured.model == 0 and measured.runtime >= 1500
    assert measured.data == pytest.approx(modelled.data - 3 * 4 * 16 * 64**2 / MB)
    assert modelled.model > 0


@pytest.mark.slow
def test_profile_measures_a_train_step(tmp_path):
    """`boneage footprint` runs a few train steps in a child and records their peak RSS."""
    import json
    import subprocess
    import sys

    exp = {"backbone": "small_cnn", "image_size": 32, "batch_size": 8}
    out = tmp_path / "footprint.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "boneage.cli",
            "footprint",
            "--experiment",
            json.dumps(exp),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    prof = ModelFootprint.load(out)
    assert prof.probe_batch == 8 and 300 < prof.train_peak_mb < 3000  # TF runtime + model


@pytest.mark.slow
@pytest.mark.heavy  # the fast tier stays under 10 minutes
@pytest.mark.parametrize("size,gib", [(224, 2.3), (512, 9.1)])
def test_vgg19_training_matches_the_orientation_figures(size, gib):
    """Issue #5: a VGG19 classifier needs about 2.3 GB at 224 and 9.1 GB at 512 in training."""
    import gc

    import keras

    model = keras.applications.VGG19(weights=None, input_shape=(size, size, 3))
    p = model_footprint(model, "vgg19", size)
    del model
    gc.collect()
    keras.backend.clear_session()
    state = peak_memory(p, "train", 1, optimizer="adam").model / GiB
    assert state == pytest.approx(gib, rel=0.1)


def test_our_backbones_profile():
    small = experiment_footprint(Experiment("e", backbone="small_cnn", image_size=64))
    big = experiment_footprint(Experiment("e", backbone="small_cnn", image_size=128))
    assert small.params == big.params and big.activations == pytest.approx(
        4 * small.activations, rel=0.05
    )
    sep = experiment_footprint(Experiment("e", image_size=64, sex_mode="separate"))
    assert sep.params > 1.9 * small.params


def test_gpu_batch_size_fills_the_gpu():
    p = ModelFootprint(
        "resnet50", 224, params=23_852_193, trainable=23_799_073, activations=37_272_078
    )
    b80 = gpu_batch_size(p, 80 * GiB)
    b16 = gpu_batch_size(p, 16 * GiB)
    assert b80 > b16 >= 16 and b80 & (b80 - 1) == 0
    used = peak_memory(p, "train", b16).model + 1024
    assert used <= 16 * GiB * 0.85 < peak_memory(p, "train", 2 * b16).model + 1024
    with pytest.raises(ValueError, match="needs"):
        gpu_batch_size(p, 1 * GiB)
