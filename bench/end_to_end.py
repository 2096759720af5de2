"""Raw PNG to report at cohort scale, training excluded: time per step and images/s.

For each size N (default 5,000 and 50,000) builds an RSNA-layout cohort of
N real-size films (about 1800 x 2000 px, like RSNA's; hard links spread over
20 rendered source films, so making it is quick), trains a small model on a
separate 400-film cohort first (not timed), then times one `snakemake
--profile local` run that takes the big cohort from raw PNG to the report:
manifest, shard (decode + QC + preprocess), index, split, calibrate, predict,
aggregate, saliency, report. Prints wall time, images/s and seconds per step
(summed over the step's jobs, from their benchmark files), and the cost per
image at each size side by side: linear cost means equal cost per image.
Targets: 50,000 images in under an hour on 2 cores; cost per image at the
largest size within 1.25x of the smallest's.

    python bench/end_to_end.py [--sizes 5000 50000] [--work DIR]
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
import yaml

from boneage.workflow_run import snakemake, tail

SOURCES = 20
HOUR_FOR_50K, LINEAR = 3600.0, 1.25


def make_cohort(root: Path, n: int) -> None:
    """labels.csv and n real-size films: hard links to SOURCES rendered hand films."""
    from PIL import Image

    from boneage.synth.cohort import render_study, sample_studies

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    studies = [s for s in sample_studies(4 * SOURCES, seed=11) if s.kind == "hand"][:SOURCES]
    sources = []
    for k, s in enumerate(studies):
        path = root / f"source{k}.png"
        if not path.exists():
            film = Image.fromarray(render_study(s, 1))
            film.resize((1800, int(1800 * film.height / film.width))).save(path)
        sources.append((path, s))
    lines = ["id,boneage,male"]
    for i in range(1, n + 1):
        path, s = sources[i % SOURCES]
        target = images / f"{i}.png"
        if not target.exists():
            os.link(path, target)
        lines.append(f"{i},{s.boneage:.1f},{s.male}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def timed(work: Path, *args: str) -> float:
    """Seconds the workflow took in ``work`` (all cores), or exit with its error."""
    start = time.perf_counter()
    proc = snakemake(work, *args, cores=os.cpu_count())
    if proc.returncode:
        raise SystemExit(f"snakemake failed in {work}:\n{tail(proc)}")
    return time.perf_counter() - start


def step_seconds(work: Path, since: float) -> dict[str, float]:
    """Seconds per step, summed over its jobs' benchmark files written after ``since``."""
    from boneage.report.collect import read_benchmarks

    bench = read_benchmarks(work / "benchmarks")
    stamps = [
        (work / "benchmarks" / r.step / f"{r.target}.tsv").stat().st_mtime
        for r in bench.itertuples()
    ]
    bench = bench[np.array(stamps) >= since]
    return bench.groupby("step")["seconds"].sum().to_dict()


def run_size(work: Path, n: int) -> dict:
    make_cohort(work / "big", n)
    config = {
        "cohorts": {
            "train": {"source": "synthetic", "n": 400, "seed": 4},
            "big": {"source": "rsna", "csv": "big/labels.csv", "images": "big/images"},
        },
        "train_cohorts": ["train"],
        "image_size": 128,
        "shards": {"size": 256},
        "experiments": {"small_cnn": {"epochs": 3}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    timed(work, "train")  # the model: not timed
    since = time.time()
    wall = timed(work)
    steps = step_seconds(work, since)
    manifest = pd.read_csv(work / "results/cohorts/big/manifest.tsv", sep="\t")
    return {
        "n": n,
        "wall": wall,
        "steps": steps,
        "accepted": int((manifest["status"] == "accepted").sum()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    base = a.work or Path(tempfile.mkdtemp(prefix="boneage-e2e-"))
    runs = []
    for n in a.sizes:
        work = base / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        r = run_size(work, n)
        runs.append(r)
        print(
            f"{n:,} images ({r['accepted']:,} accepted): {r['wall']:.0f} s wall, "
            f"{n / r['wall']:.1f} images/s on {os.cpu_count()} cores",
            flush=True,
        )
        for step, secs in sorted(r["steps"].items(), key=lambda kv: -kv[1]):
            print(f"  {step:10} {secs:8.0f} s in jobs  ({1000 * secs / n:6.1f} ms/image)")
    last = runs[-1]
    per = [r["wall"] / r["n"] for r in runs]
    growth = per[-1] / per[0]
    print(
        "cost per image: " + ", ".join(f"{r['n']:,}: {1000 * p:.1f} ms" for r, p in zip(runs, per))
    )
    missed = []
    if len(runs) > 1:
        print(f"largest / smallest cost per image: {growth:.2f} (target <= {LINEAR})")
        missed += [] if growth <= LINEAR else ["linear"]
    at_50k = per[-1] * 50_000
    print(
        f"50,000 images at the measured rate: {at_50k / 60:.0f} min (target < 60 min)"
        f"{'' if last['n'] >= 50_000 else ' (extrapolated from ' + format(last['n'], ',') + ')'}"
    )
    missed += [] if at_50k < HOUR_FOR_50K else ["hour"]
    print("MISSED: " + ", ".join(missed) if missed else "all targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
