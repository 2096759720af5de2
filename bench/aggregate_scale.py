"""aggregate and report at cohort scale: time and peak memory of each, one run.

Runs the workflow on a small synthetic cohort (real files of every kind), then
inflates its outputs into a cohort of --n predictions in --shards per-shard
tables, as a real run of that size would leave them: prediction tables,
manifest, split, index and the per-job benchmark files the report reads. Then
runs the real `boneage aggregate` and `boneage report` on it as child
processes and reads each one's peak resident memory from the kernel.
Targets (issue 13): each under 2 GB peak RSS and under 2 minutes.

    python bench/aggregate_scale.py [--n 1000000] [--shards 10000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from boneage.workflow_run import snakemake, tail

TARGET_MB, TARGET_S = 2048, 120


def small_run(work: Path) -> None:
    """The whole workflow on 200 synthetic films: a real results/ and benchmarks/ tree."""
    cfg = {
        "cohorts": {"c": {"source": "synthetic", "n": 200, "seed": 5}},
        "train_cohorts": ["c"],
        "image_size": 64,
        "shards": {"size": 64},
        "experiments": {"small_cnn": {"epochs": 1}},
        "predict": {"calibrate": False},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work)
    if proc.returncode:
        raise SystemExit(f"the workflow failed in {work}:\n{tail(proc)}")


def inflate(work: Path, n: int, shards: int) -> list[str]:
    """Cohort ``big``: the small cohort's rows tiled to ``n`` images in ``shards`` tables."""
    res, bench = work / "results", work / "benchmarks"
    preds = pd.concat(
        pd.read_csv(p, sep="\t") for p in sorted((res / "predictions/small_cnn/c").glob("*.tsv"))
    )
    manifest = pd.read_csv(res / "cohorts/c/manifest.tsv", sep="\t", dtype={"id": str})
    split = pd.read_csv(res / "cohorts/c/split.tsv", sep="\t", dtype={"id": str})
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(preds), n)
    big = preds.iloc[pick].reset_index(drop=True)
    big["id"] = [f"big{i:07d}" for i in range(n)]
    big["row"] = np.arange(1, n + 1)
    big["pred"] = (big["pred"] + rng.normal(0, 3, n)).round(2)
    cohort = res / "cohorts/big"
    (cohort / "qc").mkdir(parents=True, exist_ok=True)
    out = res / "predictions/small_cnn/big"
    out.mkdir(parents=True, exist_ok=True)
    paths, size = [], -(-n // shards)
    for k, start in enumerate(range(0, n, size)):
        path = out / f"s{k:05d}.tsv"
        big.iloc[start : start + size].to_csv(path, sep="\t", index=False)
        paths.append(str(path))
        for step in ("shard", "predict"):
            (bench / step / ("big" if step == "shard" else "small_cnn/big")).mkdir(
                parents=True, exist_ok=True
            )
        row = "s\th:m:s\tmax_rss\n12.5\t0:00:12\t900.1\n"
        (bench / "shard/big" / f"s{k:05d}.tsv").write_text(row)
        (bench / "predict/small_cnn/big" / f"s{k:05d}.tsv").write_text(row)
    tiled = manifest.iloc[rng.integers(0, len(manifest), n)].reset_index(drop=True)
    tiled["id"], tiled["row"] = big["id"], big["row"]
    tiled.to_csv(cohort / "manifest.tsv", sep="\t", index=False)
    sp = split.iloc[rng.integers(0, len(split), n)].reset_index(drop=True)
    sp["id"] = big["id"]
    sp.to_csv(cohort / "split.tsv", sep="\t", index=False)
    index = {
        "shards": [
            {"path": f"results/cohorts/big/shards/s{k:05d}.zarr", "images": size}
            for k in range(len(paths))
        ]
    }
    (cohort / "index.json").write_text(json.dumps(index))
    shutil.copy(res / "saliency/small_cnn/c.npz", res / "saliency/small_cnn/big.npz")
    return paths


def measured(cmd: list[str], work: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``boneage CMD`` run as a child process."""
    from boneage.memory.measure import measure

    t0 = time.perf_counter()
    with open(work / "bench.log", "a") as log:
        m = measure([sys.executable, "-m", "boneage.cli", *cmd], stdout=log, stderr=log, cwd=work)
    if m.returncode:
        raise SystemExit(f"boneage {cmd[0]} failed ({m.returncode}); see {work}/bench.log")
    return time.perf_counter() - t0, m.peak_rss_mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=10_000)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="boneage-aggscale-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    small_run(work)
    paths = inflate(work, a.n, a.shards)
    print(
        f"cohort of {a.n:,} predictions in {len(paths):,} tables "
        f"({time.perf_counter() - t0:.0f} s to make)"
    )
    res = "results"
    rows = {
        "aggregate": measured(
            [
                "aggregate",
                "--predictions",
                *paths,
                "--split",
                f"{res}/cohorts/big/split.tsv",
                "--train-summary",
                f"{res}/models/small_cnn/train.json",
                "--trained-on-cohort",
                "--cohort",
                "big",
                "--experiment",
                "small_cnn",
                "--out-tsv",
                f"{res}/predictions/small_cnn/big.tsv",
                "--out-json",
                f"{res}/metrics/small_cnn/big.json",
            ],
            work,
        ),
        "report": measured(
            [
                "report",
                "--results",
                res,
                "--benchmarks",
                "benchmarks",
                "--config",
                f"{res}/config/run.json",
                "--out",
                f"{res}/report-big.html",
            ],
            work,
        ),
    }
    missed = []
    for step, (secs, mb) in rows.items():
        ok = secs < TARGET_S and mb < TARGET_MB
        missed += [] if ok else [step]
        print(
            f"{step:9} {secs:7.1f} s  peak RSS {mb:7.0f} MB  "
            f"(targets < {TARGET_S} s, < {TARGET_MB} MB){'' if ok else '  MISSED'}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
