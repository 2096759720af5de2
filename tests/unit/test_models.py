"""Every backbone, loss and sex mode builds, trains a step and survives a save/load."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _batch(size: int, n: int = 4):
    rng = np.random.default_rng(0)
    x = {
        "image": rng.random((n, size, size, 1)).astype(np.float32),
        "sex": np.array([[1.0], [0.0]] * (n // 2), np.float32),
    }
    return x, np.linspace(20, 200, n, dtype=np.float32)[:, None]


def _one_step(model, loss: str, x, y) -> float:
    import keras

    from boneage.distribute import Distribution
    from boneage.losses import loss_function
    from boneage.train import make_train_step

    step = make_train_step(model, keras.optimizers.Adam(1e-3), Distribution(), loss_function(loss))
    return float(step(x, y))


@pytest.mark.parametrize(
    "backbone,size",
    [
        ("small_cnn", 32),
        pytest.param("resnet50", 32, marks=pytest.mark.heavy),  # every backbone: the heavy tier
        pytest.param("vgg16", 32, marks=pytest.mark.heavy),
        pytest.param("vgg19", 32, marks=pytest.mark.heavy),
        pytest.param("efficientnetb0", 32, marks=pytest.mark.heavy),
        pytest.param("inceptionv3", 75, marks=pytest.mark.heavy),
    ],
)
def test_backbones_build_and_step(backbone, size):
    from boneage.models import build_model

    model = build_model(backbone, size, target_mean=120.0, target_sd=40.0)
    x, y = _batch(size)
    assert np.isfinite(_one_step(model, "mae", x, y))
    months = np.asarray(model(x, training=False)["months"])
    assert months.shape == (4, 1) and np.isfinite(months).all()


@pytest.mark.parametrize("loss", ["mae", "mse", "classification"])
@pytest.mark.parametrize("sex_mode", ["input", "separate"])
def test_losses_and_sex_modes_round_trip(tmp_path, loss, sex_mode):
    from boneage.models import build_model, load_model

    model = build_model("small_cnn", 32, 120.0, 40.0, loss=loss, sex_mode=sex_mode)
    x, y = _batch(32)
    assert np.isfinite(_one_step(model, loss, x, y))
    out = model(x, training=False)
    assert ("logits" in out) == (loss == "classification")
    if loss == "classification":  # expected value of 6-month bins lies within 0-240
        assert (np.asarray(out["months"]) > 0).all() and (np.asarray(out["months"]) < 240).all()
    model.save(tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(back(x, training=False)["months"], out["months"], rtol=1e-5)


def test_separate_towers_only_learn_from_their_sex():
    import tensorflow as tf

    from boneage.models import build_model

    model = build_model("small_cnn", 32, 120.0, 40.0, sex_mode="separate")
    x, y = _batch(32)
    x["sex"] = np.ones_like(x["sex"])  # boys only
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(x, training=True)["months"] - y))
    grads = dict(
        zip(
            [v.path for v in model.trainable_variables],
            tape.gradient(loss, model.trainable_variables),
        )
    )
    female = [g for k, g in grads.items() if k.startswith("female_")]
    male = [g for k, g in grads.items() if k.startswith("male_")]
    assert female and all(float(tf.reduce_max(tf.abs(g))) == 0.0 for g in female)
    assert any(float(tf.reduce_max(tf.abs(g))) > 0.0 for g in male)


def test_bad_model_settings():
    from boneage.models import build_model

    with pytest.raises(ValueError, match="unknown backbone"):
        build_model("resnet9000", 32)
    with pytest.raises(ValueError, match="inceptionv3 needs image_size >= 75"):
        build_model("inceptionv3", 64)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        build_model("resnet50", 32, weights="/no/such/weights.h5")


def test_local_weights_file_is_loaded(tmp_path):
    import keras

    from boneage.models import build_model

    keras.utils.set_random_seed(0)
    first = build_model("resnet50", 32)
    backbone = first.get_layer("net_resnet50")
    backbone.save_weights(tmp_path / "resnet50_notop.weights.h5")
    keras.utils.set_random_seed(99)  # a different random init: only the file can make them equal
    second = build_model("resnet50", 32, weights=str(tmp_path / "resnet50_notop.weights.h5"))
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        second.get_layer("net_resnet50")(x), backbone(x), rtol=1e-5, atol=1e-5
    )
