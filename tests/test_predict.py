"""Prediction per shard and aggregation per cohort."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from boneage.aggregate import aggregate

pytestmark = pytest.mark.slow


def test_predict_and_aggregate(tmp_path, tiny_shards):
    from boneage.models import build_model, load_model
    from boneage.predict import PREDICTION_COLUMNS, predict_shard

    paths, split = tiny_shards
    build_model("small_cnn", 32, 100.0, 40.0).save(tmp_path / "m.keras")
    preds = [predict_shard(tmp_path / "m.keras", p) for p in paths]
    assert list(preds[0].columns) == PREDICTION_COLUMNS
    assert sum(len(p) for p in preds) == len(split)
    frame, result = aggregate(preds, split, train_mean=100.0, trained_on_cohort=True)
    assert result["label"]["all"]["n"] == (split["subset"] == "test").sum()
    assert "true" in result and result["baseline"]["train_mean"] == 100.0
    assert set(frame["subset"]) <= {"train", "val", "test"}
    # Every row and the metrics name the model they came from: its weights' digest.
    digest = hashlib.sha256(
        b"".join(
            np.ascontiguousarray(w).tobytes()
            for w in load_model(tmp_path / "m.keras").get_weights()
        )
    ).hexdigest()[:16]
    assert set(frame["model_digest"]) == {digest} and result["model_digest"] == digest
    # Parts made by two models are never scored together.
    preds[0]["model_digest"] = "0" * 16
    with pytest.raises(ValueError, match="2 different models"):
        aggregate(preds, split, train_mean=100.0, trained_on_cohort=True)


def test_aggregate_other_cohort_uses_all_images():
    import pandas as pd

    pred = pd.DataFrame(
        {
            "id": ["a", "b"],
            "row": [1, 2],
            "sex": ["M", "F"],
            "boneage": [100.0, 50.0],
            "true_boneage": [np.nan, np.nan],
            "pred": [110.0, 50.0],
        }
    )
    _, result = aggregate([pred], None, train_mean=75.0, trained_on_cohort=False)
    assert result["held_out"] == "all images" and result["label"]["all"]["mae"] == 5.0
    assert result["baseline"]["label"]["mae"] == 25.0 and "true" not in result


def test_tta_averages_views(tmp_path, tiny_shards):
    import tensorflow as tf

    from boneage.data import TTA_VIEWS, tta_views
    from boneage.models import build_model
    from boneage.predict import predict_shard

    paths, _ = tiny_shards
    build_model("small_cnn", 32, 100.0, 40.0).save(tmp_path / "m.keras")
    plain = predict_shard(tmp_path / "m.keras", paths[0])
    tta = predict_shard(tmp_path / "m.keras", paths[0], tta=True)
    assert not np.allclose(plain["pred"], tta["pred"])  # the views do change the input
    assert np.isfinite(tta["pred"]).all() and np.abs(plain["pred"] - tta["pred"]).max() < 40
    x = tf.random.uniform((2, 32, 32, 1))
    views = tta_views(x)
    assert len(views) == len(TTA_VIEWS)
    np.testing.assert_allclose(views[0], x, atol=1e-5)  # the first view is the image itself
