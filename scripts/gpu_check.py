"""The first GPU machine's check: the tiny workflow through the dgx profile on its GPUs.

    bash scripts/setup.sh --gpu && .venv/bin/python scripts/gpu_check.py [--keep DIR]

Passes (exit 0) when, on this machine's GPUs:
* training ran as one Horovod rank per GPU (up to 2), each rank on its own GPU;
* every predict, calibrate and saliency job took exactly one GPU (a lock per
  GPU keeps jobs that run at the same time apart: tests/unit/test_gpus.py);
* no job ran out of GPU memory, and the report was written.
Not run in CI (no GPU there); no GPU has been lent to this project so far.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from boneage.workflow_run import snakemake, tail


def gpus() -> int:
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return sum(line.startswith("GPU ") for line in out.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="run here and keep the folder")
    a = ap.parse_args()
    n = gpus()
    if n == 0:
        print("no GPU listed by nvidia-smi -L: nothing to check here", file=sys.stderr)
        return 2
    ranks = min(2, n)
    work = a.keep or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "cohorts": {"tiny": {"source": "synthetic", "n": 240, "seed": 3}},
        "train_cohorts": ["tiny"],
        "image_size": 128,
        "shards": {"size": 32},
        "experiments": {"cnn": {"epochs": 3, "batch_size": "auto"}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--config", f"distributed={{ranks: {ranks}}}", profile="dgx")
    problems = []
    if proc.returncode:
        problems.append(f"the workflow failed:\n{tail(proc)}")
    train = json.loads((work / "results/models/cnn/train.json").read_text())
    if train.get("world_size") != ranks or not str(train.get("device", "")).startswith("GPU"):
        problems.append(f"training: {train.get('world_size')} rank(s) on {train.get('device')}")
    taken: list[str] = []
    for log in sorted((work / "logs").rglob("*.log")):
        text = log.read_text()
        if re.search(r"out of memory|OOM|ResourceExhausted", text):
            problems.append(f"{log.relative_to(work)}: out of GPU memory")
        for ids in re.findall(r"GPU\(s\) ([\d,]+) taken", text):
            if "train" not in log.parts and len(ids.split(",")) != 1:
                problems.append(f"{log.relative_to(work)}: took GPUs {ids}, not one")
            taken.append(ids)
    if not taken:
        problems.append("no job logged the GPU it took")
    if not (work / "results/report.html").is_file():
        problems.append("no report")
    print(f"{n} GPU(s); {ranks} training rank(s); {len(taken)} GPU claims; work folder {work}")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
