"""Accuracy metrics for bone-age predictions (months), NumPy only."""

from __future__ import annotations

import numpy as np
import pandas as pd

WITHIN_MONTHS = (6, 12, 18, 24, 36)
#: Age bands in years, as clinicians group them: [lo, hi).
AGE_BANDS = ((0, 2), (2, 6), (6, 10), (10, 14), (14, 19))


BOOTSTRAP = 1000


def bootstrap_ci(err: np.ndarray, stat, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``stat(err)`` (resampling images)."""
    if err.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, err.size, (n, err.size))
    values = stat(err[idx])
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def score(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, mean bias (pred - ref), share within +-6..36 months, 95 % intervals."""
    ok = np.isfinite(pred) & np.isfinite(ref)
    err = np.asarray(pred, float)[ok] - np.asarray(ref, float)[ok]
    if err.size == 0:
        return {"n": 0}
    out: dict[str, float] = {
        "n": int(err.size),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
    }
    for m in WITHIN_MONTHS:
        out[f"within_{m}"] = float(np.mean(np.abs(err) <= m))
    out["mae_ci"] = bootstrap_ci(err, lambda e: np.mean(np.abs(e), axis=-1))
    out["bias_ci"] = bootstrap_ci(err, lambda e: np.mean(e, axis=-1))
    out["within_12_ci"] = bootstrap_ci(err, lambda e: np.mean(np.abs(e) <= 12, axis=-1))
    return out


def band_of(months: np.ndarray) -> np.ndarray:
    """Label each reference age with its band, e.g. ``"6-10 y"``."""
    years = np.asarray(months, float) / 12.0
    labels = np.full(years.shape, "", dtype=object)
    for lo, hi in AGE_BANDS:
        labels[(years >= lo) & (years < hi)] = f"{lo}-{hi} y"
    return labels


def breakdown(frame: pd.DataFrame, ref: str) -> dict[str, object]:
    """Scores overall, by sex and by age band of ``frame[ref]`` (needs ``pred``, ``sex``)."""
    result: dict[str, object] = {"all": score(frame["pred"].to_numpy(), frame[ref].to_numpy())}
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
