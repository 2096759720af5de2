"""Can the shards feed a GPU? The training input pipeline alone, per CPU core, no model.

On CPU the model's step caps every loader, so the feed's own ceiling is never
seen in ``bench/train_throughput.py``. Here one process pinned to one core
pulls batches from the workflow's training pipeline (``boneage.data.TrainingData``:
shards decoded, resized to the model's input, augmented on whole batches,
batched) and nothing else, side by side with the same pipeline over the same
films held in memory (``TrainingData`` whose examples fit its cache: no shard
reads after the first). The shard side streams, as a cohort larger than the
cache trains: every pass reads and decompresses its shards again.

Both sides alternate over ``--rounds`` rounds at each size (256 and 512 px by
default); the best of each counts. Target: shards >= 0.8 of in-memory.

How many cores one GPU needs: the consumption rate is NVIDIA's published
ResNet-50 v1.5 training throughput on one A100 40GB, mixed precision + XLA,
batch 256, 224 px: 2375 images/s (NVIDIA DeepLearningExamples,
TensorFlow/Classification/ConvNets/resnet50v1.5/README.md, "Training
performance: NVIDIA DGX A100 (8x A100 40GB)"), scaled by pixels to each
size (a convolutional network's work grows with the pixel count). A DGX
A100 has 128 CPU cores (2 x AMD EPYC 7742) for 8 GPUs: 16 cores a GPU.

Run: ``python bench/feed_ceiling.py`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from train_throughput import make_data  # noqa: E402  (the same films and shard)

TARGET = 0.8
#: images/s one A100 trains ResNet-50 at 224 px (mixed precision + XLA; NVIDIA, see above)
A100_RESNET50_224 = 2375.0
DGX_A100_CORES_PER_GPU = 128 // 8


def worker(mode: str, shard: Path, size: int, batch: int, batches: int) -> None:
    """Pull ``batches`` batches from one pipeline on one core; print images/s as JSON."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, before TF starts
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    from boneage.data import TrainingData

    cache_mb = 1e9 if mode == "memory" else 0.0  # 0: stream the shard on every pass
    data = TrainingData([shard], size, batch, seed=0, augment=True, cache_mb=cache_mb)
    assert (data.memory is not None) == (mode == "memory")
    it = iter(data.epoch(0))
    for _ in range(10):  # warm up: trace the maps, fill the shuffle buffer
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        x, _y = next(it)
        x["image"].numpy()  # the tensors exist
    rate = batches * batch / (time.perf_counter() - t0)
    print(json.dumps({"mode": mode, "size": size, "images_per_s": rate}), flush=True)


def run(mode: str, shard: Path, size: int, batch: int, batches: int) -> float:
    """images/s of one pinned worker process."""
    cmd = [sys.executable, str(HERE), "--worker", mode, "--shard", str(shard)]
    cmd += ["--sizes", str(size), "--batch", str(batch), "--batches", str(batches)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode} {size}px failed:\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if '"mode"' in line)
    return float(json.loads(line)["images_per_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["shards", "memory"])
    ap.add_argument("--shard", type=Path)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--n", type=int, default=128, help="films in the shard")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=40, help="timed batches per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; best of each")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.shard, a.sizes[0], a.batch, a.batches)
        return 0
    rates: dict[tuple[str, int], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        shards = {}
        for size in a.sizes:  # films stored at the model's size, as the workflow shards them
            folder = Path(tmp) / str(size)
            folder.mkdir()
            make_data(folder, a.n, size, 2 * size)
            shards[size] = folder / "s00000.zarr"
        for _ in range(a.rounds):  # alternated: a slow minute slows both sides alike
            for size in a.sizes:
                for mode in ("shards", "memory"):
                    rates[mode, size].append(run(mode, shards[size], size, a.batch, a.batches))
    print(f"training input pipeline on 1 core, batch {a.batch}, augment on, best of {a.rounds}")
    missed = []
    for size in a.sizes:
        s, m = max(rates["shards", size]), max(rates["memory", size])
        need = A100_RESNET50_224 * (224 / size) ** 2
        cores = need / s
        verdict = "enough" if cores <= DGX_A100_CORES_PER_GPU else "NOT enough"
        print(f"{size} px: shards {s:7.1f} img/s/core   in-memory {m:7.1f} img/s/core")
        print(f"  shards / in-memory: {s / m:.2f}  (target >= {TARGET})")
        print(
            f"  one A100 training ResNet-50 at {size} px takes ~{need:.0f} img/s: "
            f"{cores:.1f} cores of this machine feed it; a DGX A100 has "
            f"{DGX_A100_CORES_PER_GPU} a GPU ({verdict})"
        )
        if s / m < TARGET:
            missed.append(f"{size} px")
    if missed:
        print(f"MISSED: shards / in-memory below {TARGET} at {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
