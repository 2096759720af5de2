"""Measure instead of guessing: a command's peak resident memory, and a train step's.

:func:`measure` runs a command as a child and reads its peak RSS
(``ru_maxrss`` from ``wait4``, the figure Slurm's accounting polls).
:func:`measure_train_step` measures a few train steps of an experiment's
model that way (:func:`probe_train_step`, in a child process): the probe
calls into training; training never imports this package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from boneage.experiment import Experiment
from boneage.memory.model import ModelFootprint


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


def probe_train_step(e: Experiment, steps: int = 3) -> None:
    """Run ``steps`` train steps of the experiment's model on random data (one process).

    Run as a child by :func:`measure_train_step`, which reads its peak RSS.
    """
    import keras
    import numpy as np

    from boneage.distribute import Distribution
    from boneage.losses import loss_function
    from boneage.models import build_model
    from boneage.train import make_optimizer, make_train_step, set_precision

    batch = e.host_batch
    set_precision(e.precision)
    model = build_model(e.backbone, e.image_size, loss=e.loss, sex_mode=e.sex_mode)
    optimizer = make_optimizer(e, e.learning_rate)
    if e.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, Distribution(), loss_function(e.loss), e.xla)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.random((batch, e.image_size, e.image_size, 1), dtype=np.float32)
        sex = rng.integers(0, 2, (batch, 1)).astype(np.float32)
        step({"image": x, "sex": sex}, rng.uniform(0, 228, (batch, 1)).astype(np.float32))


def measure_train_step(exp: Experiment, footprint: ModelFootprint) -> ModelFootprint:
    """``footprint`` with the measured peak RSS of a few train steps (a child process)."""
    import dataclasses

    m = measure(
        [
            sys.executable,
            *("-m", "boneage.cli", "probe-train"),
            *("--experiment", json.dumps(dataclasses.asdict(exp))),
        ],
        stdout=sys.stderr,
    )
    if m.returncode:
        raise RuntimeError(f"the train-step probe failed (exit {m.returncode}); see the log")
    return dataclasses.replace(
        footprint, train_peak_mb=round(m.peak_rss_mb, 1), probe_batch=exp.host_batch
    )
