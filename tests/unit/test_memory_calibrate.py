"""Peak RSS measured from the kernel, and the predict calibration."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from boneage.memory.calibrate import calibrate_predict
from boneage.memory.measure import measure


def test_measure_reads_the_childs_peak_rss():
    # 300 MB touched for a moment, then freed: the peak still counts.
    code = "a = b'x' * (300 * 2**20); del a; import time; time.sleep(0.2)"
    m = measure([sys.executable, "-c", code])
    assert m.returncode == 0 and 300 <= m.peak_rss_mb < 360
    assert measure([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3


def test_measure_is_not_inflated_by_a_large_parent():
    ballast = b"x" * (600 * 2**20)  # this process is large when it starts the command
    m = measure([sys.executable, "-c", "pass"])
    assert len(ballast) and m.peak_rss_mb < 100


@pytest.mark.slow
def test_calibrate_predict_writes_measurement_and_estimate(tiny_shards, tiny_model, tmp_path):
    shards, _ = tiny_shards
    model = tiny_model  # footprint.json beside it: the result carries the estimate too
    result = calibrate_predict(str(model), shards[0], threads=1)
    assert 300 < result["peak_rss_mb"] < 1500 and result["images"] > 0
    assert 0.75 <= result["estimate_ratio"] <= 1.25  # the estimate within +-25 %
    out = tmp_path / "cal.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "boneage.cli",
            "calibrate",
            "--model",
            str(model),
            "--shard",
            shards[0],
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "peak RSS" in proc.stdout and json.loads(out.read_text())["peak_rss_mb"] > 300
