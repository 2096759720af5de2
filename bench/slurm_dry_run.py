"""How long `snakemake -n --profile slurm` takes to plan a 50,000-image cohort in 500 shards.

Builds an RSNA-layout cohort of N rows (every image a hard link to one real
PNG, so it is quick to make), runs its manifest checkpoint (`snakemake
--profile local` up to plan.json), then times the dry run of the whole
workflow with the Slurm profile: 500 shard jobs, training, calibration, 500
predict jobs, aggregation and the report. Target: under 30 s.

    python bench/slurm_dry_run.py [--n 50000] [--shard-size 100] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def make_cohort(root: Path, n: int) -> None:
    """labels.csv with n rows and n PNG files (hard links to one synthetic film)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    first = images / "1.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 200), dtype=np.uint8)).save(first)
    ages = rng.uniform(12, 216, n).round(1)
    lines = ["id,boneage,male"] + [
        f"{i},{ages[i - 1]},{'True' if i % 2 else 'False'}" for i in range(1, n + 1)
    ]
    for i in range(2, n + 1):
        target = images / f"{i}.png"
        if not target.exists():
            os.link(first, target)
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def snakemake(work: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--work", type=Path, help="keep the cohort here (default: a temp folder)")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="boneage-dryrun-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_cohort(work / "cohort", a.n)
    config = {
        "cohorts": {
            "big": {"source": "rsna", "csv": "cohort/labels.csv", "images": "cohort/images"}
        },
        "train_cohorts": ["big"],
        "shards": {"size": a.shard_size},
        "cluster": {"node_mem": "64G", "node_cores": 24},
        "experiments": {"small_cnn": {"backbone": "small_cnn"}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    print(f"cohort: {a.n:,} images in {work} ({time.perf_counter() - t0:.1f} s to make)")
    took, proc = snakemake(
        work,
        "--profile",
        str(REPO / "profiles/local"),
        "--cores",
        "2",
        "results/cohorts/big/plan.json",
    )
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    print(f"manifest checkpoint: {took:.1f} s")
    took, proc = snakemake(work, "-n", "--profile", "slurm")
    if proc.returncode:
        print(proc.stderr[-3000:], file=sys.stderr)
        return 1
    out = proc.stdout + proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    print(
        f"snakemake -n --profile slurm: {took:.1f} s for {counts.get('total')} jobs "
        f"(shard {counts.get('shard')}, predict {counts.get('predict')}); target < 30 s"
    )
    return 0 if took < 30 else 2


if __name__ == "__main__":
    sys.exit(main())
