"""What bit-identical training costs: images/s with TensorFlow op determinism on and off.

Each side trains the default experiment's network (``small_cnn`` at 128 px,
batch 32, all cores) on the same shard through the workflow's own feed
(:class:`boneage.data.TrainingData`, augmentation on) and train step, in a
fresh process. The two sides alternate over ``--rounds`` rounds and each
keeps its best, so the machine's drift hits both alike. The cost must stay
under 15 % for determinism to be the default (``deterministic: true``); the
bench exits 1 when it is not. It also checks what determinism buys: two
deterministic runs give the same weights.

Run: ``python bench/determinism.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
#: The largest cost (1 - on / off) at which determinism stays the default.
MAX_COST = 0.15


def make_shard(path: Path, n: int, size: int) -> None:
    """A shard of ``n`` synthetic hands at ``size`` px (the synthetic cohort's renderer)."""
    from boneage.preprocess import prepare
    from boneage.shards import Shard, write_shard
    from boneage.synth.cohort import render_study, sample_studies

    studies = [s for s in sample_studies(n * 2, seed=4) if s.kind == "hand"][:n]
    images = np.stack([prepare(render_study(s, 4), size)[..., None] for s in studies])
    write_shard(
        path,
        Shard(
            images=images.astype(np.uint8),
            sex=np.array([s.male for s in studies], np.uint8),
            boneage=np.array([s.boneage for s in studies], np.float32),
            true=np.array([s.true_boneage for s in studies], np.float32),
            row=np.arange(1, len(studies) + 1, dtype=np.int64),
            ids=[s.id for s in studies],
        ),
    )


def worker(shard: Path, deterministic: bool, size: int, batch: int, steps: int) -> None:
    """Time ``steps`` train steps (after 5 to warm up); print images/s and a weight digest."""
    import keras

    from boneage.data import TrainingData
    from boneage.distribute import Distribution, configure_devices
    from boneage.experiment import Experiment
    from boneage.losses import loss_function
    from boneage.models import build_model, weights_digest
    from boneage.train import make_optimizer, make_train_step, set_determinism

    dist = Distribution()
    configure_devices(dist, os.cpu_count())
    set_determinism(deterministic)
    keras.utils.set_random_seed(1)
    data = TrainingData([shard], size, batch, seed=1, steps=steps + 5).epoch(0)
    model = build_model("small_cnn", size, 100.0, 40.0)
    optimizer = make_optimizer(Experiment("bench"), 0.002)
    optimizer.build(model.trainable_variables)
    step = make_train_step(model, optimizer, dist, loss_function("mae"))
    batches = iter(data)
    for _ in range(5):
        step(*next(batches))
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*next(batches))
    rate = steps * batch / (time.perf_counter() - t0)
    print(json.dumps({"images_per_s": rate, "weights": weights_digest(model)}), flush=True)


def run(shard: Path, deterministic: bool, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", str(shard), "--size", str(a.size)]
    cmd += ["--batch", str(a.batch), "--steps", str(a.steps)]
    cmd += ["--deterministic"] if deterministic else []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.deterministic, a.size, a.batch, a.steps)
        return 0
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "s00000.zarr"
        make_shard(shard, 256, a.size)
        on: list[float] = []
        off: list[float] = []
        digests = []
        for r in range(a.rounds):
            sides = (True, False) if r % 2 == 0 else (False, True)  # alternate who goes first
            for det in sides:
                got = run(shard, det, a)
                (on if det else off).append(got["images_per_s"])
                if det:
                    digests.append(got["weights"])
                print(
                    f"round {r + 1}: deterministic {'on ' if det else 'off'} "
                    f"{got['images_per_s']:7.1f} img/s",
                    flush=True,
                )
    best_on, best_off = max(on), max(off)
    cost = 1 - best_on / best_off
    same = len(set(digests)) == 1
    print(f"small_cnn {a.size} px, batch {a.batch}, {os.cpu_count()} cores, best of {a.rounds}")
    print(f"deterministic on:  {best_on:7.1f} img/s")
    print(f"deterministic off: {best_off:7.1f} img/s")
    print(f"on / off: {best_on / best_off:.3f}  (cost {cost:+.1%}; target < {MAX_COST:.0%})")
    print(f"deterministic runs give the same weights: {same} ({', '.join(sorted(set(digests)))})")
    missed = [n for n, ok in (("cost", cost < MAX_COST), ("same weights", same)) if not ok]
    print(f"MISSED: {', '.join(missed)}" if missed else "all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
