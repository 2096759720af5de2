"""Starting weights: ImageNet's from the Keras cache (offline), inputs as each network expects,
fine-tuning (a frozen backbone, a smaller backbone rate) and the rate's scaling with ranks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from harness import KERAS_NETS, cached_imagenet_file

from boneage.experiment import Experiment
from boneage.weights import IMAGENET
from boneage.workflow_run import REPO

pytestmark = pytest.mark.slow


def test_the_cache_table_is_what_keras_downloads():
    """File names, origins and MD5s as keras.applications itself has them."""
    import inspect

    import keras.src.applications as apps

    for backbone, (module, _) in KERAS_NETS.items():
        source = inspect.getsource(getattr(apps, module))
        spec = IMAGENET[backbone]
        assert spec.md5 in source, backbone
        base = spec.origin.rsplit("/", 1)[0]
        assert spec.origin.endswith("/" + spec.name)
        assert base.split("keras-applications")[0] in source, backbone


def test_imagenet_weights_come_from_the_keras_cache_offline(tmp_path, monkeypatch):
    """`weights: imagenet` starts the backbone from exactly the cached file's arrays."""
    from boneage.models import backbone_layers, build_model

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path, net = cached_imagenet_file(tmp_path / "keras", "efficientnetb0")
    model = build_model("efficientnetb0", 32, weights="imagenet")
    [backbone] = backbone_layers(model)
    got, want = backbone.get_weights(), net.get_weights()
    assert len(got) == len(want) > 100
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    fresh = build_model("efficientnetb0", 32)  # random: not those arrays
    assert not all(
        np.array_equal(a, b) for a, b in zip(backbone_layers(fresh)[0].get_weights(), want)
    )


def test_a_missing_imagenet_file_stops_the_config_naming_file_and_command(tmp_path, monkeypatch):
    from boneage.config import ConfigError, validate

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["experiments"] = {"net": {"backbone": "inceptionv3", "weights": "imagenet"}}
    with pytest.raises(ConfigError) as info:
        validate(copy.deepcopy(config))
    message = str(info.value)
    expected = tmp_path / "empty/models/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert f"{expected} is missing" in message
    assert "boneage fetch-weights --backbone inceptionv3" in message
    config["experiments"]["net"].update(weights="random", freeze_epochs=2)
    with pytest.raises(ConfigError, match="freeze_epochs"):
        validate(config)  # nothing pretrained to keep frozen


@pytest.mark.parametrize("backbone", list(KERAS_NETS))
def test_each_backbone_gets_its_input_as_preprocess_input_gives_it(backbone):
    """Our input layer on a grey film in [0, 1] equals keras.applications' preprocess_input
    on the same film as an RGB image in 0-255 (channel order and means included)."""
    import keras

    from boneage.models import build_model

    module, _ = KERAS_NETS[backbone]
    size = 75 if backbone == "inceptionv3" else 32
    model = build_model(backbone, size)
    layer = model.get_layer("input_range")
    inputs = keras.Model(model.input["image"], layer.output)
    grey = np.random.default_rng(0).uniform(0, 1, (2, size, size, 1)).astype(np.float32)
    ours = np.asarray(inputs(grey))
    rgb = np.repeat(grey * 255.0, 3, axis=-1)
    theirs = np.asarray(getattr(keras.applications, module).preprocess_input(rgb))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_backbone_moves_by_its_share_of_the_rate(optimizer):
    """One step from the same start: the backbone's change is backbone_lr_scale times the
    change at the full rate; the head's is the same (exactly a smaller backbone rate)."""
    import keras

    from boneage.distribute import Distribution
    from boneage.losses import loss_function
    from boneage.models import backbone_layers, build_model
    from boneage.train import make_optimizer, make_train_step

    rng = np.random.default_rng(1)
    x = {"image": rng.uniform(0, 1, (4, 32, 32, 1)).astype(np.float32), "sex": np.ones((4, 1))}
    y = rng.uniform(50, 200, (4, 1)).astype(np.float32)
    keras.utils.set_random_seed(3)
    start = build_model("vgg16", 32).get_weights()
    changes = {}
    for scale in (1.0, 0.1):
        keras.utils.set_random_seed(3)  # the same dropout masks in both steps
        model = build_model("vgg16", 32)
        model.set_weights(start)
        opt = make_optimizer(Experiment("e", optimizer=optimizer), 1e-2)
        opt.build(model.trainable_variables)
        step = make_train_step(model, opt, Distribution(), loss_function("mae"), False, scale)
        before = {v.path: np.asarray(v) for v in model.trainable_variables}
        step(x, y)
        changes[scale] = {v.path: np.asarray(v) - before[v.path] for v in model.trainable_variables}
        backbone = {v.path for v in backbone_layers(model)[0].trainable_variables}
    moved = [p for p in backbone if np.abs(changes[1.0][p]).max() > 1e-6]
    assert len(moved) > 10
    for path, full in changes[1.0].items():
        want = 0.1 * full if path in backbone else full
        np.testing.assert_allclose(changes[0.1][path], want, rtol=1e-3, atol=1e-7, err_msg=path)


@pytest.mark.heavy  # two EfficientNet trainings: a minute on 2 cores
def test_a_frozen_backbone_keeps_its_weights_and_batchnorm_statistics(tmp_path, tiny_shards):
    """freeze_epochs: 1 of 1 epoch trains the head alone (the backbone's arrays, BatchNorm
    moving statistics included, stay the file's); of 2 epochs, the second trains it too."""
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from boneage.models import backbone_layers, load_model
    from boneage.train import run_training

    keras.utils.set_random_seed(5)
    net = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    start = tmp_path / "start_notop.h5"
    with h5py.File(start, "w") as f:
        save_weights_to_hdf5_group(f, net)
    paths, split = tiny_shards
    settings = dict(image_size=32, batch_size=8, backbone="efficientnetb0", weights=str(start))
    for epochs, frozen_after in ((1, True), (2, False)):
        exp = Experiment("ft", epochs=epochs, freeze_epochs=1, warmup_epochs=0, **settings)
        out = tmp_path / f"e{epochs}"
        summary = run_training(exp, paths, split, str(out), threads=1)
        model = load_model(out / "model.keras")
        [backbone] = backbone_layers(model)
        same = [np.array_equal(a, b) for a, b in zip(backbone.get_weights(), net.get_weights())]
        assert all(same) == frozen_after, (epochs, sum(same), len(same))
        assert backbone.trainable  # saved whole: fine-tuning can go on from it
        assert summary["inputs"]["weights"] != "random"
    head = model.get_layer("head_out").get_weights()[0]
    assert np.abs(head).max() > 0


@pytest.mark.parametrize(
    ("optimizer", "scaling", "factor"),
    [
        ("sgd", None, 8.0),  # linear by default for SGD
        ("adamw", None, 8**0.5),  # square root for the adaptive optimizers
        ("adam", None, 8**0.5),
        ("adamw", "linear", 8.0),
        ("sgd", "none", 1.0),
    ],
)
def test_the_rate_grows_with_ranks_as_configured(optimizer, scaling, factor):
    from boneage.train import learning_rate

    exp = Experiment("e", optimizer=optimizer, lr_scaling=scaling, learning_rate=0.002)
    exp.warmup_epochs, exp.schedule = 0, "constant"
    assert learning_rate(exp, 0, world=8) == pytest.approx(0.002 * factor)
    assert learning_rate(exp, 0, world=1) == pytest.approx(0.002)
