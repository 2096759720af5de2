"""Predict bone age for every image of one shard."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from boneage.shards import read_shard

PREDICTION_COLUMNS = ["id", "row", "sex", "boneage", "true_boneage", "pred"]


def predict_shard(model_path: str | os.PathLike[str], shard_path: str | os.PathLike[str],
                  batch_size: int = 64, threads: int | None = None) -> pd.DataFrame:
    """Run the saved model over a shard; one row per image (columns: PREDICTION_COLUMNS)."""
    from boneage.distribute import set_threads
    from boneage.models import load_model

    set_threads(threads)
    model = load_model(model_path)
    shard = read_shard(shard_path)
    preds = np.zeros(len(shard), np.float32)
    for i in range(0, len(shard), batch_size):
        x = shard.images[i:i + batch_size].astype(np.float32) / 255.0
        sex = shard.sex[i:i + batch_size].astype(np.float32)[:, None]
        preds[i:i + batch_size] = np.asarray(model({"image": x, "sex": sex}, training=False))[:, 0]
    return pd.DataFrame({
        "id": shard.ids, "row": shard.row, "sex": np.where(shard.sex == 1, "M", "F"),
        "boneage": shard.boneage, "true_boneage": shard.true, "pred": np.round(preds, 2),
    }, columns=PREDICTION_COLUMNS)
