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


def test_tta_views_rotate_and_scale_as_listed():
    """Each view moves an off-centre spot as TTA_VIEWS says: by its angle about the
    centre, and away from the centre by its scale (measured on the spot's centroid)."""
    import tensorflow as tf

    from boneage.data import TTA_VIEWS, tta_views

    size, radius = 65, 20.0
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    centre = (size - 1) / 2
    spot = np.exp(-((xx - centre - radius) ** 2 + (yy - centre) ** 2) / 4.0)
    views = tta_views(tf.constant(spot[None, :, :, None]))
    assert len(views) == len(TTA_VIEWS)
    angles = []
    for (deg, scale), view in zip(TTA_VIEWS, views):
        v = np.asarray(view)[0, :, :, 0]
        cx, cy = (v * xx).sum() / v.sum() - centre, (v * yy).sum() / v.sum() - centre
        assert np.hypot(cx, cy) == pytest.approx(radius * scale, abs=0.05), (deg, scale)
        angles.append(np.degrees(np.arctan2(cy, cx)))
        assert abs(angles[-1]) == pytest.approx(abs(deg), abs=0.1), (deg, scale)
    assert angles[1] == pytest.approx(-angles[2], abs=0.1) and angles[1] != pytest.approx(0)
    np.testing.assert_allclose(views[0], spot[None, :, :, None], atol=1e-5)


def test_tta_prediction_is_the_mean_over_the_views(tmp_path, tiny_shards):
    from boneage.data import TTA_VIEWS, warp
    from boneage.models import build_model
    from boneage.predict import predict_shard
    from boneage.shards import read_shard

    paths, _ = tiny_shards
    model = build_model("small_cnn", 32, 100.0, 40.0)
    model.save(tmp_path / "m.keras")
    shard = read_shard(paths[0])
    x = shard.images.astype(np.float32) / 255.0
    sex = shard.sex.astype(np.float32)[:, None]
    n = len(x)

    def view(deg: float, scale: float) -> np.ndarray:
        angle, zoom = np.full(n, np.radians(deg), np.float32), np.full(n, scale, np.float32)
        return np.asarray(warp(x, angle, zoom, np.zeros((n, 2), np.float32)))

    by_view = [
        np.asarray(
            model(
                {"image": view(d, s), "sex": sex},
                training=False,
            )["months"]
        )[:, 0]
        for d, s in TTA_VIEWS
    ]
    plain = predict_shard(tmp_path / "m.keras", paths[0])
    tta = predict_shard(tmp_path / "m.keras", paths[0], tta=True)
    np.testing.assert_allclose(plain["pred"], by_view[0], atol=0.006)  # rounded to 0.01
    np.testing.assert_allclose(tta["pred"], np.mean(by_view, axis=0), atol=0.006)
    assert np.abs(tta["pred"] - plain["pred"]).max() > 0.01  # the views change the input


def test_batch_size_auto_is_64_on_cpu_and_what_the_gpu_holds_on_a_gpu(tmp_path, monkeypatch):
    """auto: 64 without a GPU; on a GPU the largest power of two whose forward pass fits
    85 % of it (worked out here from the weights and layer outputs), at most 256."""
    from harness import fake_gpu

    from boneage.cli.args import batch_size
    from boneage.memory.batch import predict_batch
    from boneage.memory.model import GPU_RESERVE_MB, MB
    from boneage.models import build_model

    model = build_model("resnet50", 224)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert predict_batch(model, "auto") == 64 and predict_batch(model, 16) == 16

    def leaves(m):  # the backbone is a model inside the model
        for layer in m.layers:
            yield from leaves(layer) if hasattr(layer, "layers") else [layer]

    outputs = sum(  # floats every layer outputs per image
        int(np.prod(t.shape[1:]))
        for layer in leaves(model)
        if layer.__class__.__name__ != "InputLayer"
        for t in layer._inbound_nodes[0].output_tensors  # noqa: SLF001
    )
    weights_mb = 4 * model.count_params() / MB
    for gpu_mb, want in ((4_000, None), (8_000, None), (80_000, 256)):
        fake_gpu(tmp_path, monkeypatch, gpu_mb)
        batch = predict_batch(model, "auto")
        budget = 0.85 * gpu_mb - GPU_RESERVE_MB - weights_mb
        if want is None:  # the largest power of two that fits
            want = 2 ** int(np.log2(budget / (4 * outputs / MB)))
        assert batch == want, gpu_mb
    assert batch_size("auto") == "auto" and batch_size("32") == 32
    for bad in ("0", "-1", "big"):
        with pytest.raises(Exception, match="neither a positive integer nor auto"):
            batch_size(bad)
