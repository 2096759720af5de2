"""Calibration: predict one shard in a child process and record what it took.

``boneage calibrate`` runs ``boneage predict`` on one shard as a child
process and records the child's peak RSS (:func:`boneage.memory.measure.measure`),
its wall time and images per second, next to the model-based estimate. Later
predict jobs ask for the measured figure plus a margin (``RunPlan.predict_plan``
in boneage.plan).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from boneage.memory.measure import measure
from boneage.memory.model import ModelFootprint, peak_memory, predict_host_batch


def predict_command(
    model: str,
    shard: str,
    out: str,
    threads: int,
    batch_size: int | str = "auto",
    tta: bool = False,
) -> list[str]:
    """The command line of one ``boneage predict`` job, as the workflow's predict rule runs it."""
    cmd = [sys.executable, "-m", "boneage.cli", "predict", "--model", model, "--shard", shard]
    cmd += ["--out", out, "--threads", str(threads), "--batch-size", str(batch_size)]
    return cmd + (["--tta"] if tta else [])


def calibrate_predict(
    model: str, shard: str, threads: int, tta: bool = False, batch_size: int | str = "auto"
) -> dict:
    """Predict one shard in a child process; its peak RSS, time and the estimate beside them."""
    from boneage.launch import gpu_count
    from boneage.shards import read_shard, stored_size

    meta = read_shard(shard, images=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calibration.tsv"
        cmd = predict_command(model, shard, str(out), threads, batch_size, tta)
        m = measure(cmd)
    if m.returncode != 0:
        raise RuntimeError(
            f"calibration predict failed with exit status {m.returncode}: {' '.join(cmd)}"
        )
    result = {
        "step": "predict",
        "shard": str(shard),
        "images": len(meta),
        "threads": threads,
        "batch_size": batch_size,
        "tta": tta,
        **asdict(m),
        "images_per_s": len(meta) / m.wall_s if m.wall_s else 0.0,
    }
    footprint_path = Path(model).with_name("footprint.json")
    if footprint_path.exists():
        est = peak_memory(
            ModelFootprint.load(footprint_path),
            "predict",
            predict_host_batch(batch_size, gpu_count()),
            threads=threads,
            shard_images=len(meta),
            stored_size=stored_size([shard]),
            tta_views=5 if tta else 1,
        )
        result.update(
            estimate_mb=round(est.total, 1), estimate_ratio=round(est.total / m.peak_rss_mb, 3)
        )
    return result
