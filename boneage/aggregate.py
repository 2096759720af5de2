"""Aggregate per-shard predictions into per-cohort metrics (no TensorFlow)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from boneage import metrics
from boneage.labels import TRAINABLE
from boneage.predict import PREDICTION_COLUMNS
from boneage.provenance import ensemble_digest, model_digest_of


def ensemble_predictions(members: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean prediction per image over member experiments' cohort predictions.

    Its ``model_digest`` is the ensemble's: a digest of the members' digests.
    """
    keep = ["id", "row", "sex", "boneage", "true_boneage"]
    first = members[0][keep].copy()
    preds = pd.concat([m.set_index("id")["pred"] for m in members], axis=1)
    first["pred"] = first["id"].map(preds.mean(axis=1)).round(2).values
    first["model_digest"] = ensemble_digest([model_digest_of(m) for m in members])
    return first


def aggregate(
    predictions: list[pd.DataFrame],
    split: pd.DataFrame | None,
    train_mean: float,
    trained_on_cohort: bool,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Merge shard predictions and score the held-out images.

    Every part must come from one model (its ``model_digest``; ValueError
    otherwise). Held-out images are the ``test`` subset when the model was trained on this
    cohort, else every image. Scores are given against the (noisy) label and,
    where known, the true bone age; ``baseline`` predicts the training mean
    for the same images.
    """
    frame = (
        pd.concat(predictions, ignore_index=True)
        if predictions
        else pd.DataFrame(columns=PREDICTION_COLUMNS)
    )
    frame["id"] = frame["id"].astype(str)
    if split is not None:
        cols = [c for c in ("id", "subset", "label_status") if c in split]
        frame = frame.merge(split[cols].astype(str), on="id", how="left")
    else:
        frame["subset"] = "test"
    frame = frame.sort_values("row").reset_index(drop=True)
    held = frame[frame["subset"] == "test"] if trained_on_cohort else frame
    if "label_status" in held:  # a censored label is a bound, not a value to score against
        held = held[held["label_status"].isin(TRAINABLE) | held["label_status"].isna()]
    result: dict[str, Any] = {
        "held_out": "test subset" if trained_on_cohort else "all images",
        "model_digest": model_digest_of(frame),  # the model the predictions came from
        "n_images": int(len(frame)),
        "label": metrics.breakdown(held, "boneage"),
        "subsets": {
            s: metrics.score(g["pred"].to_numpy(), g["boneage"].to_numpy())
            for s, g in frame.groupby("subset")
        },
        "baseline": {
            "train_mean": train_mean,
            "label": metrics.score(np.full(len(held), train_mean), held["boneage"].to_numpy()),
        },
    }
    if held["true_boneage"].notna().any():
        result["true"] = metrics.breakdown(held, "true_boneage")
        result["baseline"]["true"] = metrics.score(
            np.full(len(held), train_mean), held["true_boneage"].to_numpy()
        )
    return frame, result
