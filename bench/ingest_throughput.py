"""Ingest throughput against bare PNG decoding, side by side in one run.

Renders N synthetic hand films upscaled to a realistic detector size
(RSNA films are ~1500-2000 px tall), then times, on one core:

* decode: open + load each PNG with Pillow (the floor any ingest pays);
* ingest: :func:`boneage.shards.build_shard` on the same files: decode,
  QC (polarity, hand check), pad, resize and the shard write.

The two sides alternate over ``--repeats`` rounds; the best of each counts.
Prints images/s for both and their ratio (target >= 0.7). Run:
``python bench/ingest_throughput.py --n 60 --height 1800``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from boneage.shards import build_shard
from boneage.synth.cohort import render_study, sample_studies


def make_films(folder: Path, n: int, height: int) -> list[Path]:
    """n hand films as 8-bit PNGs about ``height`` pixels tall."""
    paths = []
    studies = [s for s in sample_studies(n * 2, seed=9) if s.kind == "hand"][:n]
    for s in studies:
        img = Image.fromarray(render_study(s, 9))
        scale = height / img.height
        img = img.resize((int(img.width * scale), height), Image.Resampling.BILINEAR)
        path = folder / f"{s.id}.png"
        img.save(path, compress_level=6)
        paths.append(path)
    return paths


def time_decode(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    return len(paths) / (time.perf_counter() - t0)


def time_ingest(paths: list[Path], out: Path, size: int) -> float:
    rows = pd.DataFrame(
        {
            "row": range(1, len(paths) + 1),
            "id": [p.stem for p in paths],
            "abspath": [str(p) for p in paths],
            "sex": "M",
            "boneage": 120.0,
            "true_boneage": np.nan,
        }
    )
    t0 = time.perf_counter()
    verdicts = build_shard(rows, out, size, "bench")
    rate = len(paths) / (time.perf_counter() - t0)
    assert (verdicts["status"] == "accepted").all(), verdicts["reason"].value_counts()
    return rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--height", type=int, default=1800)
    ap.add_argument("--size", type=int, default=256, help="model input side")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as per-job
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_films(folder, a.n, a.height)
        px = np.mean([Image.open(p).size[0] * Image.open(p).size[1] for p in paths]) / 1e6
        time_decode(paths)  # warm the page cache
        decodes, ingests = [], []
        for i in range(a.repeats):  # alternated, best of each: a slow moment slows both alike
            decodes.append(time_decode(paths))
            ingests.append(time_ingest(paths, folder / f"s{i}.zarr", a.size))
        decode, ingest = max(decodes), max(ingests)
    print(f"{a.n} films, {px:.1f} MPixel each, model input {a.size} px, 1 core")
    print(f"decode only : {decode:7.1f} images/s")
    print(f"ingest      : {ingest:7.1f} images/s  (decode + QC + pad/resize + shard write)")
    print(f"ratio       : {ingest / decode:7.2f}  (target >= 0.70)")
    return 0 if ingest / decode >= 0.7 else 1


if __name__ == "__main__":
    sys.exit(main())
