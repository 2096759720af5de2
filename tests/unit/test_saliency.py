"""Saliency examples: typical and worst cases, maps that depend on the image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from boneage.saliency import select_examples


def test_select_examples_typical_and_worst():
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(20)],
            "boneage": np.full(20, 100.0),
            "pred": 100.0 + np.arange(20),
            "sex": "F",
            "subset": ["test"] * 19 + ["train"],
        }
    )
    chosen = select_examples(frame, n=3)
    assert list(chosen.loc[chosen["kind"] == "worst", "id"]) == ["18", "17", "16"]  # 19 is train
    typical = chosen.loc[chosen["kind"] == "typical", "pred"] - 100
    assert len(typical) == 3 and set(typical) <= {6.0, 7.0, 8.0, 9.0}  # near the median, 7.5


@pytest.mark.slow
def test_saliency_maps_follow_the_input(tmp_path, tiny_shards):
    from boneage.models import build_model
    from boneage.saliency import saliency_maps

    model = build_model("small_cnn", 32, 100.0, 40.0)
    rng = np.random.default_rng(0)
    images = np.zeros((2, 32, 32, 1), np.float32)
    images[0, 4:12, 4:12] = rng.random((8, 8, 1))
    images[1, 20:28, 20:28] = rng.random((8, 8, 1))
    maps = saliency_maps(model, images, np.array([[1.0], [0.0]], np.float32))
    assert maps.shape == (2, 32, 32) and maps.dtype == np.uint8 and maps.max() == 255
    assert not np.array_equal(maps[0], maps[1])
