"""Planning a million-image cohort: `snakemake -n --profile slurm` against Snakemake's floor.

Builds an RSNA-layout cohort of N rows (every image a hard link to one of a
few real PNGs: a file takes at most 65,000 links on ext4, so links are spread
over one source file per 50,000 images), runs its manifest checkpoint
(`snakemake --profile local` up to shards.json) and times it, then measures one
shard job reading its rows (its byte span of the rows table, against reading
the whole table as it did before), then times, in the same run:

- the dry run of the whole workflow with the Slurm profile (N / shard-size
  shard jobs, training, calibration, as many predict jobs, aggregation, the
  report);
- the floor: a bare Snakemake DAG of the same shape (shard jobs -> predict
  jobs -> one report; trivial rules; every job printed, as in ours), planned
  with the same command (`snakemake -n --profile slurm`: the profile's default
  resources are evaluated for every job of any workflow at the site);
- for reference, the same bare DAG planned with Snakemake's defaults
  (`snakemake -n --cores 1`: no profile);
- for reference, the bare DAG with a log and a benchmark file per job, as
  every rule of ours must have (same command as ours): what those two files
  per job cost Snakemake, so that the rest is what our rules add.

Each timing is the best of ``--repeat`` runs (the manifest checkpoint forced
to rerun; the four dry runs interleaved), as timeit reports: this machine's
speed drifts by about 10 % over minutes, more than the margins of the targets.
Every run's time is printed.

Targets (issue 13): the dry run within 1.5x the floor and under 120 s; the
manifest checkpoint under 30 s; a shard job's peak memory while reading its
rows under half the memory it asks for.

    python bench/slurm_dry_run.py [--n 1000000] [--shard-size 100] [--repeat 3] [--work DIR]
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

from boneage.atomic import load_json
from boneage.config import validate
from boneage.memory.node import Node
from boneage.plan import RunPlan

REPO = Path(__file__).resolve().parent.parent


#: Images per source file: below ext4's 65,000 hard links per file.
LINKS_PER_SOURCE = 50_000
MANIFEST_TARGET_S, PLAN_TARGET_S, FLOOR_RATIO = 30, 120, 1.5

BARE = """
N = {shards}
SHARDS = [f"s{{i:05d}}" for i in range(N)]

rule all:
    input: "report.html"

rule shard:
    output: "shards/{{s}}.zarr"{shard_files}
    shell: "touch {{output}}"

rule predict:
    input: "shards/{{s}}.zarr"
    output: "predictions/{{s}}.tsv"{predict_files}
    shell: "touch {{output}}"

rule report:
    input: expand("predictions/{{s}}.tsv", s=SHARDS)
    output: "report.html"
    shell: "touch {{output}}"
"""


def make_cohort(root: Path, n: int) -> None:
    """labels.csv with n rows and n PNG files (hard links to a few synthetic films)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ages = rng.uniform(12, 216, n).round(1)
    lines = ["id,boneage,male"] + [
        f"{i},{ages[i - 1]},{'True' if i % 2 else 'False'}" for i in range(1, n + 1)
    ]
    source = images / "1.png"
    for i in range(1, n + 1):
        target = images / f"{i}.png"
        if (i - 1) % LINKS_PER_SOURCE == 0:
            source = target
            if not target.exists():
                film = rng.integers(0, 255, (256, 200), dtype=np.uint8)
                Image.fromarray(film).save(target)
        elif not target.exists():
            os.link(source, target)
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


#: One shard job's first step, run in its own process: the rows it reads, then its peak RSS.
ROWS_READ = """
import resource, sys, time
from boneage.atomic import load_json, read_tsv, read_tsv_span
rows, shard_list, shard, whole = sys.argv[1:5]
start = time.perf_counter()
meta = load_json(shard_list)
entry, columns = {s["shard"]: s for s in meta["shards"]}[shard], meta.get("columns")
table = read_tsv(rows) if whole == "1" else read_tsv_span(rows, entry.get("span"), columns)
assert len(table.set_index("row").loc[entry["rows"]]) == len(entry["rows"])
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def rows_read(work: Path, shard: str, whole: bool) -> tuple[float, float]:
    """Seconds and peak MB of a shard job reading its rows: its span, or the whole table."""
    rows, shard_list = (
        work / "private/cohorts/big/rows.tsv",
        work / "results/cohorts/big/shards.json",
    )
    args = [str(rows), str(shard_list), shard, "1" if whole else "0"]
    out = subprocess.run(
        [sys.executable, "-c", ROWS_READ, *args], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def bare_dag(work: Path, shards: int, logged: bool = False) -> Path:
    """The bare Snakemake DAG of the same shape, in its own folder (``logged``: each shard
    and predict job with a log and a benchmark file, as the house's rules have)."""
    bare = work / ("bare-logged" if logged else "bare")
    bare.mkdir(exist_ok=True)
    files = {
        f"{rule}_files": (
            f'\n    log: "logs/{rule}/{{s}}.log"\n    benchmark: "benchmarks/{rule}/{{s}}.tsv"'
            if logged
            else ""
        )
        for rule in ("shard", "predict")
    }
    (bare / "Snakefile").write_text(BARE.format(shards=shards, **files))
    return bare


def snakemake(folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Seconds and result of `snakemake ARGS` run in ``folder``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed in {folder}:\n{proc.stderr[-3000:]}")
    return took, proc


def best(times: list[float]) -> str:
    """The best of some runs, then all of them."""
    return f"{min(times):.1f} s (runs: {', '.join(f'{t:.1f}' for t in times)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timing (the best counts)")
    ap.add_argument("--work", type=Path, help="keep the cohort here (default: a temp folder)")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
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
    ours = ["-s", str(REPO / "Snakefile")]
    manifest = [
        snakemake(
            work,
            *ours,
            "--profile",
            str(REPO / "profiles/local"),
            "--cores",
            "2",
            "results/cohorts/big/shards.json",
            "--forcerun",
            "manifest",
        )[0]
        for _ in range(a.repeat)
    ]
    print(f"manifest checkpoint: {best(manifest)}; target < {MANIFEST_TARGET_S} s")
    # A shard job in the middle of the cohort: its rows only, against the whole table.
    shard = f"s{a.n // a.shard_size // 2:05d}"
    (span_s, span_mb), (whole_s, whole_mb) = (rows_read(work, shard, w) for w in (False, True))
    ask = RunPlan(validate(config), lambda: Node.from_config({})).step_mem_mb("shard")
    print(
        f"shard job reading its rows: {span_s:.2f} s, peak {span_mb:.0f} MB; the whole table "
        f"(before): {whole_s:.2f} s, {whole_mb:.0f} MB ({whole_s / span_s:.0f}x, "
        f"{whole_mb / span_mb:.1f}x); the job asks {ask} MB (target: peak < half of it)"
    )
    profile = str(REPO / "profiles/slurm")
    shards = len(load_json(work / "results/cohorts/big/shards.json")["shards"])
    bare = bare_dag(work, shards)  # as many shard jobs as ours plans
    logged = bare_dag(work, shards, logged=True)
    runs: dict[str, list[float]] = {"ours": [], "floor": [], "defaults": [], "logged": []}
    for _ in range(a.repeat):  # interleaved: a slow minute slows all four alike
        took, proc = snakemake(work, *ours, "-n", "--profile", profile)
        runs["ours"].append(took)
        runs["floor"].append(snakemake(bare, "-n", "--profile", profile)[0])
        runs["defaults"].append(snakemake(bare, "-n", "--cores", "1")[0])
        runs["logged"].append(snakemake(logged, "-n", "--profile", profile)[0])
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout + proc.stderr, re.M))
    took, floor, defaults = (min(runs[k]) for k in ("ours", "floor", "defaults"))
    ratio = took / floor
    print(
        f"snakemake -n --profile slurm: {best(runs['ours'])} for {counts.get('total')} jobs "
        f"(shard {counts.get('shard')}, predict {counts.get('predict')}); "
        f"target < {PLAN_TARGET_S} s"
    )
    print(f"bare Snakemake DAG of the same shape, same command: {best(runs['floor'])}")
    print(f"ours / floor: {ratio:.2f} (target <= {FLOOR_RATIO})")
    print(
        f"for reference, the bare DAG with Snakemake's defaults (-n --cores 1): "
        f"{best(runs['defaults'])}; ours / that: {took / defaults:.2f}"
    )
    print(
        f"for reference, the bare DAG with a log and a benchmark per job (same command): "
        f"{best(runs['logged'])}; ours / that: {took / min(runs['logged']):.2f}"
    )
    ok = (
        min(manifest) < MANIFEST_TARGET_S
        and span_mb < ask / 2
        and took < PLAN_TARGET_S
        and ratio <= FLOOR_RATIO
    )
    print("all targets met" if ok else "MISSED a target")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
