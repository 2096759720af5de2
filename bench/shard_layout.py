"""Zarr shard layouts side by side: files per shard, and reading speed in predict and training.

Writes the same shards (synthetic films preprocessed as ingest does, 128 px,
256 images each) in two layouts:

* ``chunked``: the layout before issue 13, five arrays each chunked by 64
  images (one file per chunk, about 25 files for 256 images);
* ``sharded``: today's ``boneage.shards.write_shard`` (5 files a shard).

Then reads every shard as predict does (``read_shard``, whole shard) and as
training does (one pass of ``boneage.data.make_dataset`` over all shards),
alternating layouts over several rounds, and prints images/s.
Targets: at most 8 files a shard, and reading at least as fast as chunked
(ratio >= 0.95, allowing for timer noise).

    python bench/shard_layout.py [--shards 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MAX_FILES, MIN_RATIO = 8, 0.95


def write_chunked(path: Path, shard) -> None:
    """The earlier layout: each array its own chunks of 64 images (as boneage wrote it)."""
    import zarr
    from zarr.storage import LocalStore

    root = zarr.open_group(store=LocalStore(str(path)), mode="w", zarr_format=3)
    for name in ("images", "sex", "boneage", "true", "row"):
        data = getattr(shard, name)
        arr = root.create_array(
            name, shape=data.shape, chunks=(64,) + data.shape[1:], dtype=data.dtype
        )
        arr[...] = data
    root.attrs["ids"] = list(shard.ids)
    root.attrs["count"] = len(shard.ids)


def films(n: int, size: int):
    """n preprocessed synthetic hand films (uint8, size x size), as ingest stores them."""
    from boneage.preprocess import prepare
    from boneage.synth.cohort import render_study, sample_studies

    studies = [s for s in sample_studies(n * 2, seed=3) if s.kind == "hand"][:n]
    return [s for s in studies], np.stack(
        [prepare(render_study(s, 1) / 255.0, size) for s in studies]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=24)
    ap.add_argument("--images", type=int, default=256, help="images per shard")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from boneage.data import make_dataset
    from boneage.shards import Shard, read_shard, write_shard

    studies, imgs = films(64, a.size)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="boneage-layout-"))
    paths: dict[str, list[str]] = {"chunked": [], "sharded": []}
    for k in range(a.shards):
        pick = rng.integers(0, len(studies), a.images)
        shard = Shard(
            images=imgs[pick][..., None],
            sex=np.array([studies[i].male for i in pick], np.uint8),
            boneage=np.array([studies[i].boneage for i in pick], np.float32),
            true=np.array([studies[i].true_boneage for i in pick], np.float32),
            row=np.arange(k * a.images, (k + 1) * a.images, dtype=np.int64) + 1,
            ids=[f"{k}-{j}" for j in range(a.images)],
        )
        for layout, write in (("chunked", write_chunked), ("sharded", write_shard)):
            path = tmp / layout / f"s{k:05d}.zarr"
            path.parent.mkdir(exist_ok=True)
            write(path, shard)
            paths[layout].append(str(path))
    files = {
        layout: max(sum(len(f) for _, _, f in os.walk(p)) for p in ps)
        for layout, ps in paths.items()
    }
    n = a.shards * a.images
    times: dict[tuple[str, str], list[float]] = {
        (layout, how): [] for layout in paths for how in ("predict", "train")
    }
    for _ in range(a.rounds):  # alternate, so both see the same cache and machine state
        for layout, ps in paths.items():
            t0 = time.perf_counter()
            for p in ps:
                read_shard(p)
            times[(layout, "predict")].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _batch in make_dataset(ps, a.size, 64):
                pass
            times[(layout, "train")].append(time.perf_counter() - t0)
    rate = {k: n / min(v) for k, v in times.items()}
    print(f"{a.shards} shards x {a.images} images at {a.size} px; best of {a.rounds} rounds")
    print(
        f"files per shard   chunked: {files['chunked']:3d}   sharded: {files['sharded']:3d}"
        f"   (target <= {MAX_FILES})"
    )
    missed = [] if files["sharded"] <= MAX_FILES else ["files"]
    for how in ("predict", "train"):
        c, s = rate[("chunked", how)], rate[("sharded", how)]
        print(
            f"{how:8} read  chunked: {c:8.0f} img/s   sharded: {s:8.0f} img/s   "
            f"sharded/chunked {s / c:.2f} (target >= {MIN_RATIO})"
        )
        if s / c < MIN_RATIO:
            missed.append(how)
    print("MISSED: " + ", ".join(missed) if missed else "all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
