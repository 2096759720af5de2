"""Metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from boneage import metrics
from boneage.metrics import band_of, breakdown, score


def test_score_known_values():
    s = score(np.array([10.0, 20, 30, 40]), np.array([10.0, 26, 18, 40]))
    assert s["n"] == 4
    assert s["mae"] == pytest.approx(4.5)
    assert s["rmse"] == pytest.approx(np.sqrt((0 + 36 + 144 + 0) / 4))
    assert s["bias"] == pytest.approx((0 - 6 + 12 + 0) / 4)
    assert s["within_6"] == 0.75 and s["within_12"] == 1.0
    lo, hi = s["mae_ci"]
    assert 0 <= lo <= s["mae"] <= hi <= 12  # bootstrap over the 4 errors (0, 6, 12, 0)
    far = score(np.array([0.0, 20, -30, 50, 18]), np.zeros(5))  # errors 0, 20, 30, 50, 18
    assert (far["within_18"], far["within_24"], far["within_36"]) == (0.4, 0.6, 0.8)


def test_bootstrap_interval_narrows_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 5000):
        ref = rng.uniform(0, 200, n)
        s = score(ref + rng.normal(0, 10, n), ref)
        widths.append(s["mae_ci"][1] - s["mae_ci"][0])
        assert s["mae_ci"][0] < s["mae"] < s["mae_ci"][1]
    assert widths[1] < widths[0] / 5


def test_nan_references_are_skipped():
    assert score(np.array([1.0, 2.0]), np.array([np.nan, 2.0]))["n"] == 1
    assert score(np.array([]), np.array([]))["n"] == 0


def test_bands_and_breakdown():
    assert list(band_of(np.array([12.0, 30, 100, 150, 200]))) == [
        "0-2 y",
        "2-6 y",
        "6-10 y",
        "10-14 y",
        "14-19 y",
    ]
    frame = pd.DataFrame({"pred": [10.0, 100, 160], "ref": [12.0, 90, 150], "sex": ["M", "F", "F"]})
    b = breakdown(frame, "ref")
    assert b["all"]["n"] == 3 and b["by_sex"]["F"]["mae"] == 10.0
    assert b["by_band"]["0-2 y"]["mae"] == 2.0 and b["by_band"]["2-6 y"]["n"] == 0


def test_bootstrap_by_distinct_errors_matches_resampling_images():
    """Counts over distinct errors give the same intervals as resampling the images."""
    rng = np.random.default_rng(1)
    err = np.round(rng.normal(2, 10, 300), 2)
    draws = err[rng.integers(0, err.size, (4000, err.size))]
    direct = np.percentile(np.abs(draws).mean(axis=1), [2.5, 97.5])
    lo, hi = metrics.bootstrap_cis(err, n=4000)["mae"]
    assert abs(lo - direct[0]) < 0.15 and abs(hi - direct[1]) < 0.15


def test_bootstrap_memory_is_flat_in_the_number_of_images():
    """A million errors: resamples are drawn in chunks, never resamples x images at once."""
    import tracemalloc

    rng = np.random.default_rng(2)
    err = np.round(rng.normal(0, 9, 1_000_000), 2)
    tracemalloc.start()
    cis = metrics.bootstrap_cis(err)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20, peak  # 1000 x 1e6 indices would be 8 GB
    assert cis["mae"][0] < np.abs(err).mean() < cis["mae"][1]
