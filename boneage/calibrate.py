"""Measure instead of guessing: run a command, record its peak resident memory.

``boneage calibrate`` runs ``boneage predict`` on one shard as a child
process and records the child's peak RSS (``ru_maxrss`` from ``wait4``, the
same figure Slurm's accounting polls), its wall time and images per second,
next to the model-based estimate. Later predict jobs ask for the measured
figure plus a margin (``RunPlan.predict_plan`` in boneage.plan).
"""

from __future__ import annotations

import json
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


#: Runs the command and writes its rusage peak RSS (KiB) and exit status to argv[1].
_WRAPPER = """\
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    json.dump([usage.ru_maxrss, proc.returncode], fh)
"""


def measure(
    command: list[str],
    env: dict[str, str] | None = None,
    stdout=None,
    stderr=None,
    cwd: str | os.PathLike[str] | None = None,
) -> Measurement:
    """Run ``command`` to the end; its peak RSS comes from the kernel's rusage of the child.

    A child's ``ru_maxrss`` also counts the memory it had between fork and
    exec, a copy of its parent's: measured from a large parent (one that
    imported TensorFlow, say) a small command would read as large as the
    parent. So a small Python wrapper starts the command and reports.
    """
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rusage.json"
        subprocess.run(
            [sys.executable, "-c", _WRAPPER, str(result), *command],
            env=env,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            check=True,
        )
        maxrss_kib, returncode = json.loads(result.read_text())
    return Measurement(maxrss_kib / 1024, time.monotonic() - start, returncode)


def calibrate_predict(
    model: str, shard: str, threads: int, tta: bool = False, batch_size: int | str = "auto"
) -> dict:
    """Predict one shard in a child process; its peak RSS, time and the estimate beside them."""
    from boneage.launch import gpu_count
    from boneage.memory import ModelProfile, estimate, predict_host_batch
    from boneage.shards import read_shard, stored_size

    meta = read_shard(shard, images=False)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "calibration.tsv"
        cmd = [
            sys.executable,
            "-m",
            "boneage.cli",
            "predict",
            "--model",
            model,
            "--shard",
            shard,
            "--out",
            str(out),
            "--threads",
            str(threads),
            "--batch-size",
            str(batch_size),
        ] + (["--tta"] if tta else [])
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
    profile_path = Path(model).with_name("profile.json")
    if profile_path.exists():
        est = estimate(
            ModelProfile.load(profile_path),
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
