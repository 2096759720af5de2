"""Accuracy metrics for bone-age predictions (months), NumPy only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

WITHIN_MONTHS = (6, 12, 18, 24, 36)
#: Age bands in years, as clinicians group them: [lo, hi).
AGE_BANDS = ((0, 2), (2, 6), (6, 10), (10, 14), (14, 19))


BOOTSTRAP = 1000
#: Resample counts held at once (resamples x distinct errors): memory stays flat in n.
CHUNK_CELLS = 2_000_000
#: The per-image quantities whose means get bootstrap intervals.
MEAN_STATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mae": np.abs,
    "bias": lambda e: e,
    "within_12": lambda e: (np.abs(e) <= 12).astype(float),
}


def bootstrap_cis(
    err: np.ndarray, n: int = BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95 % percentile bootstrap intervals of the means in :data:`MEAN_STATS`.

    Resampling images with replacement draws multinomial counts over the
    images; images with the same error are interchangeable, so the counts are
    drawn over the distinct errors instead (the same distribution, exactly).
    Predictions are stored to 0.01 month, so a million errors have a few
    tens of thousands of distinct values; resamples are drawn in chunks, and
    memory holds only ``n`` means per statistic, never ``n`` x images.
    """
    if err.size < 2:
        return {k: (float("nan"), float("nan")) for k in MEAN_STATS}
    values, counts = np.unique(err, return_counts=True)
    per_value = np.stack([f(values) for f in MEAN_STATS.values()])  # (stats, distinct)
    rng = np.random.default_rng(seed)
    means = np.empty((len(MEAN_STATS), n))
    step = max(1, CHUNK_CELLS // values.size)
    for start in range(0, n, step):
        draws = rng.multinomial(err.size, counts / err.size, size=min(step, n - start))
        means[:, start : start + len(draws)] = per_value @ draws.T / err.size
    lo, hi = np.percentile(means, [2.5, 97.5], axis=1)
    return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(MEAN_STATS)}


def score(pred: np.ndarray, ref: np.ndarray) -> dict[str, float | tuple[float, float]]:
    """MAE, RMSE, mean bias (pred - ref), share within +-6..36 months, 95 % intervals."""
    ok = np.isfinite(pred) & np.isfinite(ref)
    err = np.asarray(pred, float)[ok] - np.asarray(ref, float)[ok]
    if err.size == 0:
        return {"n": 0}
    out: dict[str, float | tuple[float, float]] = {
        "n": int(err.size),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
    }
    for m in WITHIN_MONTHS:
        out[f"within_{m}"] = float(np.mean(np.abs(err) <= m))
    for name, ci in bootstrap_cis(err).items():
        out[f"{name}_ci"] = ci
    return out


def band_of(months: np.ndarray) -> np.ndarray:
    """Label each reference age with its band, e.g. ``"6-10 y"``."""
    years = np.asarray(months, float) / 12.0
    labels = np.full(years.shape, "", dtype=object)
    for lo, hi in AGE_BANDS:
        labels[(years >= lo) & (years < hi)] = f"{lo}-{hi} y"
    return labels


def breakdown(frame: pd.DataFrame, ref: str) -> dict[str, Any]:
    """Scores overall, by sex and by age band of ``frame[ref]`` (needs ``pred``, ``sex``)."""
    result: dict[str, Any] = {"all": score(frame["pred"].to_numpy(), frame[ref].to_numpy())}
    result["by_sex"] = {
        str(s): score(g["pred"].to_numpy(), g[ref].to_numpy()) for s, g in frame.groupby("sex")
    }
    bands = band_of(frame[ref].to_numpy())
    result["by_band"] = {
        f"{lo}-{hi} y": score(
            frame["pred"].to_numpy()[bands == f"{lo}-{hi} y"],
            frame[ref].to_numpy()[bands == f"{lo}-{hi} y"],
        )
        for lo, hi in AGE_BANDS
    }
    return result
