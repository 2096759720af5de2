"""Measure instead of guessing: run a command, record its peak resident memory.

``boneage calibrate`` runs ``boneage predict`` on one shard as a child
process and records the child's peak RSS (``ru_maxrss`` from ``wait4``, the
same figure Slurm's accounting polls), its wall time and images per second,
next to the model-based estimate. Later predict jobs ask for the measured
figure plus a margin (boneage.resources.predict_plan).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """Peak resident memory (MB) and wall time (s) of one finished process."""

    peak_rss_mb: float
    wall_s: float
    returncode: int


def measure(command: list[str], env: dict[str, str] | None = None, stdout=None, stderr=None,
            cwd: str | os.PathLike[str] | None = None) -> Measurement:
    """Run ``command`` to the end; its peak RSS comes from the kernel's rusage of the child."""
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped; keep Popen quiet
    # Linux reports ru_maxrss in KiB.
    return Measurement(usage.ru_maxrss / 1024, time.monotonic() - start, proc.returncode)


def calibrate_predict(model: str, shard: str, threads: int, tta: bool = False,
                      batch_size: int = 64) -> dict:
    """Predict one shard in a child process; its peak RSS, time and the estimate beside them."""
    from boneage.memory import ModelProfile, estimate
    from boneage.shards import read_shard, stored_size

    meta = read_shard(shard, images=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calibration.tsv"
        cmd = [sys.executable, "-m", "boneage.cli", "predict", "--model", model, "--shard",
               shard, "--out", str(out), "--threads", str(threads),
               "--batch-size", str(batch_size)] + (["--tta"] if tta else [])
        m = measure(cmd)
    if m.returncode != 0:
        raise RuntimeError(f"calibration predict failed with exit status {m.returncode}: "
                           f"{' '.join(cmd)}")
    result = {"step": "predict", "shard": str(shard), "images": len(meta),
              "threads": threads, "batch_size": batch_size, "tta": tta, **asdict(m),
              "images_per_s": len(meta) / m.wall_s if m.wall_s else 0.0}
    profile_path = Path(model).with_name("profile.json")
    if profile_path.exists():
        est = estimate(ModelProfile.load(profile_path), "predict", batch_size, threads=threads,
                       shard_images=len(meta), stored_size=stored_size([shard]),
                       tta_views=5 if tta else 1)
        result.update(estimate_mb=round(est.total, 1),
                      estimate_ratio=round(est.total / m.peak_rss_mb, 3))
    return result
