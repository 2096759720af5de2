"""Models build, train a step and survive a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_small_cnn_step_and_round_trip(tmp_path):
    import keras

    from boneage.models import build_model

    model = build_model("small_cnn", 32, target_mean=120.0, target_sd=40.0)
    x = {"image": np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32),
         "sex": np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)}
    y = np.full((4, 1), 120.0, np.float32)
    model.compile(optimizer="adam", loss="mae")
    model.train_on_batch(x, y)
    pred = model.predict(x, verbose=0)
    assert pred.shape == (4, 1) and np.isfinite(pred).all()
    assert 40 < float(pred.mean()) < 200  # the output layer puts predictions in months
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), pred, rtol=1e-5)


def test_unknown_backbone():
    from boneage.models import build_model

    with pytest.raises(ValueError, match="unknown backbone"):
        build_model("resnet9000", 32)
