"""Prediction per shard and aggregation per cohort."""

from __future__ import annotations

import numpy as np
import pytest

from boneage.aggregate import aggregate

pytestmark = pytest.mark.slow


def test_predict_and_aggregate(tmp_path, tiny_shards):
    from boneage.models import build_model
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


def test_aggregate_other_cohort_uses_all_images():
    import pandas as pd

    pred = pd.DataFrame({"id": ["a", "b"], "row": [1, 2], "sex": ["M", "F"],
                         "boneage": [100.0, 50.0], "true_boneage": [np.nan, np.nan],
                         "pred": [110.0, 50.0]})
    _, result = aggregate([pred], None, train_mean=75.0, trained_on_cohort=False)
    assert result["held_out"] == "all images" and result["label"]["all"]["mae"] == 5.0
    assert result["baseline"]["label"]["mae"] == 25.0 and "true" not in result
