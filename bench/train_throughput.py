"""Training throughput, measured side by side in one run (CPU here; GPU where lent).

1. Rank scaling: images/s for 1 and 2 Horovod ranks with the same threads per
   rank (``horovodrun -np N``); efficiency = rate(2) / (2 x rate(1)).
2. Data feeding, one process: every loader feeds the same model through the same
   train step and clock (the workflow's ``make_train_step``):
   * from shards (the workflow's tf.data pipeline),
   * from in-memory arrays (``from_tensor_slices``: the upper bound),
   * the seeds' loader, faithfully: Keras ``ImageDataGenerator.flow_from_dataframe``
     (PNG decoded every epoch, nearest-neighbour resize) in background
     worker threads (one per core, a queue of 10, as ``model.fit`` runs them),
   * a plain Python loop that decodes and resizes (bicubic) every PNG in the
     training thread (the earlier baseline; kept as a second row).

Every figure is the best of ``--rounds`` alternating rounds (default 2).
Run: ``python bench/train_throughput.py`` (about 6 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve()
#: Shards must feed training this many times faster than the seeds' loader. On 2
#: CPU cores the model's own step caps every loader at the in-memory rate, which
#: the seeds' loader reaches 0.38 of (measured); on a GPU the gap is far wider.
SEEDS_TARGET = 2


def make_data(folder: Path, n: int, size: int, height: int) -> None:
    """n synthetic films as full-size PNGs plus the same films ingested into one shard."""
    from PIL import Image

    from boneage.shards import build_shard
    from boneage.synth.cohort import render_study, sample_studies

    studies = [s for s in sample_studies(n * 2, seed=4) if s.kind == "hand"][:n]
    rows: list[dict[str, object]] = []
    for s in studies:
        img = Image.fromarray(render_study(s, 4))
        img = img.resize((int(img.width * height / img.height), height))
        img.save(folder / f"{s.id}.png", compress_level=6)
        rows.append(
            {
                "row": len(rows) + 1,
                "id": s.id,
                "abspath": str(folder / f"{s.id}.png"),
                "sex": "M" if s.male else "F",
                "boneage": s.boneage,
                "true_boneage": s.true_boneage,
            }
        )
    build_shard(pd.DataFrame(rows), folder / "s00000.zarr", size, "bench")


def png_batches(folder: Path, size: int, batch: int):
    """The seeds' loader: decode and resize every PNG on every pass, one Python thread."""
    from PIL import Image

    from boneage.shards import read_shard

    meta = read_shard(folder / "s00000.zarr", images=False)
    while True:
        for i in range(0, len(meta.ids) - batch + 1, batch):
            imgs = []
            for sid in meta.ids[i : i + batch]:
                with Image.open(folder / f"{sid}.png") as im:
                    imgs.append(np.asarray(im.convert("L").resize((size, size)), np.float32))
            yield (
                {
                    "image": np.stack(imgs)[..., None] / 255.0,
                    "sex": meta.sex[i : i + batch, None].astype(np.float32),
                },
                meta.boneage[i : i + batch, None],
            )


def seeds_loader(folder: Path, size: int, batch: int, workers: int):
    """The seeds' input pipeline: ImageDataGenerator from a data frame, in worker threads.

    Batches come in order from ``workers`` threads with a queue of 10, as
    ``model.fit`` runs a ``keras.utils.PyDataset(workers=..., max_queue_size=10)``.
    """
    import tensorflow as tf

    from boneage.shards import read_shard

    meta = read_shard(folder / "s00000.zarr", images=False)
    frame = pd.DataFrame(
        {"filename": [f"{sid}.png" for sid in meta.ids], "boneage": meta.boneage.astype(float)}
    )
    # Keras 3 keeps the seeds' class as tf.keras's legacy preprocessing API.
    generator = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255.0)
    flow = generator.flow_from_dataframe(
        frame,
        directory=str(folder),
        x_col="filename",
        y_col="boneage",
        class_mode="raw",
        target_size=(size, size),
        color_mode="grayscale",
        batch_size=batch,
        shuffle=False,
        interpolation="nearest",
    )
    sex = meta.sex.astype(np.float32)[:, None]

    def item(i: int):
        x, y = flow[i]
        image = x.astype(np.float32)
        return {"image": image, "sex": sex[i * batch : i * batch + len(x)]}, y[:, None].astype(
            np.float32
        )

    with ThreadPoolExecutor(workers) as pool:
        queue: deque = deque()
        for i in itertools.count():
            queue.append(pool.submit(item, i % len(flow)))
            if len(queue) >= 10:
                yield queue.popleft().result()


def worker(mode: str, folder: Path, size: int, batch: int, steps: int, threads: int) -> None:
    """Time ``steps`` train steps fed by ``mode``; rank 0 prints images/s as JSON."""
    import keras
    import tensorflow as tf

    from boneage.data import TrainingData
    from boneage.distribute import configure_devices, detect
    from boneage.losses import loss_function
    from boneage.models import build_model
    from boneage.shards import read_shard
    from boneage.train import make_train_step

    dist = detect()
    configure_devices(dist, threads * dist.local_size)
    keras.utils.set_random_seed(0)
    shard = folder / "s00000.zarr"
    if mode == "shards":
        batches = iter(TrainingData([shard], size, batch, seed=0, augment=False).epoch(0))
    elif mode == "seeds":
        batches = seeds_loader(folder, size, batch, threads)
    elif mode == "memory":
        s = read_shard(shard)
        ds = (
            tf.data.Dataset.from_tensor_slices(
                (
                    {
                        "image": s.images.astype(np.float32) / 255.0,
                        "sex": s.sex[:, None].astype(np.float32),
                    },
                    s.boneage[:, None],
                )
            )
            .repeat()
            .batch(batch)
        )
        batches = iter(ds.prefetch(tf.data.AUTOTUNE))
    else:
        batches = png_batches(folder, size, batch)
    model = build_model("small_cnn", size)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    dist.broadcast(model.variables)
    step = make_train_step(model, optimizer, dist, loss_function("mae"))
    for _ in range(5):  # trace and warm up
        step(*next(batches))
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*next(batches))
    rate = steps * batch * dist.size / (time.perf_counter() - t0)
    if dist.is_chief:
        print(json.dumps({"mode": mode, "ranks": dist.size, "images_per_s": rate}), flush=True)


def run(args: list[str], ranks: int = 1) -> float:
    """images/s of one worker process (``ranks`` > 1: under horovodrun)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, str(HERE), *args]
    if ranks > 1:
        horovodrun = shutil.which("horovodrun", path=str(Path(sys.executable).parent))
        cmd = [horovodrun or "horovodrun", "-np", str(ranks), "--gloo", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{proc.stderr[-3000:]}")
    line = next(line for line in proc.stdout.splitlines() if '"mode"' in line)
    return json.loads(line[line.index("{") :])["images_per_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=["shards", "memory", "seeds", "png"])
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--height", type=int, default=1800, help="PNG height (RSNA films ~1800)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best of each")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.folder, a.size, a.batch, a.steps, a.threads)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, a.n, a.size, a.height)
        common = [
            "--folder",
            str(folder),
            "--size",
            str(a.size),
            "--batch",
            str(a.batch),
            "--steps",
            str(a.steps),
        ]
        cores = ["--threads", str(os.cpu_count() or 1)]
        rates: dict[str, list[float]] = defaultdict(list)
        for _ in range(a.rounds):  # alternated: a slow minute slows every side alike
            rates["np1"].append(run(["--worker", "memory", "--threads", "1", *common]))
            rates["np2"].append(run(["--worker", "memory", "--threads", "1", *common], ranks=2))
            for mode in ("shards", "memory", "seeds", "png"):
                rates[mode].append(run(["--worker", mode, *cores, *common]))
    best = {k: max(v) for k, v in rates.items()}  # best of each: the machine's noise only slows
    r1, r2 = best["np1"], best["np2"]
    print(f"small_cnn {a.size}px, batch {a.batch}/rank, CPU ({os.cpu_count()} cores)")
    print(f"ranks  np=1: {r1:7.1f} img/s   np=2: {r2:7.1f} img/s   (1 thread per rank)")
    print(f"scaling efficiency: {r2 / (2 * r1):.2f}  (target >= 0.9)")
    s, m, g, p = (best[k] for k in ("shards", "memory", "seeds", "png"))
    print(f"feeding (img/s)  shards: {s:7.1f}   in-memory: {m:7.1f}")
    print(f"  seeds' ImageDataGenerator, {cores[1]} worker threads, same step: {g:7.1f}")
    print(f"  PNG decode + bicubic resize in the training thread:     {p:7.1f}")
    print(f"shards / in-memory: {s / m:.2f}  (target >= 0.9)")
    print(f"shards / seeds' ImageDataGenerator: {s / g:.1f}x  (target >= {SEEDS_TARGET}x)")
    print(f"seeds' loader / in-memory: {g / m:.2f}")
    print(f"shards / PNG loop: {s / p:.1f}x  (no target: the earlier, less faithful baseline)")
    missed = [
        name
        for name, ok in (
            ("scaling", r2 / (2 * r1) >= 0.9),
            ("in-memory", s / m >= 0.9),
            ("ImageDataGenerator", s / g >= SEEDS_TARGET),
        )
        if not ok
    ]
    if missed:
        print(f"MISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
