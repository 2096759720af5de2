"""The first GPU machine's check: the tiny workflow through the dgx profile on its GPUs.

    bash scripts/gpu-check.sh [RESULTS.json]      (builds the GPU stack first)
    .venv/bin/python scripts/gpu_check.py [--out RESULTS.json] [--keep DIR]

Checks, each a row of the JSON it writes (exit 1 on any failure, 2 without a GPU):
* training on GPU as one Horovod rank per GPU (up to 2), each rank on its own
  GPU, in float32, ``mixed_float16`` and ``xla: true`` (three experiments);
* every predict, calibrate and saliency job took exactly one GPU, none ran
  out of memory, and the report was written;
* the float32 model's predictions of one shard on GPU equal a CPU run's
  within :data:`TOLERANCE_MONTHS`, and images/s on GPU against CPU (16 threads);
* each experiment's peak GPU memory (TensorFlow's allocator) within the
  planner's estimate (``boneage.memory.model.gpu_memory_mb``) at its batch;
* with 2+ GPUs, a Horovod allreduce between two ranks over NCCL equals the sum.

About 5 minutes on one GPU once the wheels are installed. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from boneage.atomic import write_json
from boneage.launch import gpu_count, gpu_memory_mb
from boneage.workflow_run import snakemake, tail

#: Largest difference (months) allowed between GPU and CPU predictions of the same model.
TOLERANCE_MONTHS = 0.05
EXPERIMENTS = {
    "f32": {"epochs": 3, "batch_size": "auto"},
    "f16": {"epochs": 3, "batch_size": "auto", "precision": "mixed_float16"},
    "xla": {"epochs": 3, "batch_size": "auto", "xla": True},
}
ALLREDUCE = (
    "import numpy as np, tensorflow as tf, horovod.tensorflow as hvd; hvd.init();"
    "g = tf.config.list_physical_devices('GPU');"
    "tf.config.set_visible_devices(g[hvd.local_rank()], 'GPU');"
    "x = hvd.allreduce(tf.constant([float(hvd.rank() + 1)] * 4), op=hvd.Sum);"
    "print('ALLREDUCE', hvd.rank(), x.device, x.numpy().tolist())"
)


def boneage(*args: str, gpu: bool) -> subprocess.CompletedProcess[str]:
    """Run one ``boneage`` step on the first GPU or on CPU only."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0" if gpu else ""}
    env.pop("BONEAGE_GPUS_CLAIMED", None)
    return subprocess.run(["boneage", *args], capture_output=True, text=True, env=env)


def check_training(work: Path, ranks: int, problems: list[str]) -> dict[str, Any]:
    """Per experiment: ranks, their GPUs, and peak GPU memory against the planner's."""
    from boneage.memory.model import ModelFootprint
    from boneage.memory.model import gpu_memory_mb as planned_mb

    rows: dict[str, Any] = {}
    for name in EXPERIMENTS:
        models = work / "results/models" / name
        train = json.loads((models / "train.json").read_text())
        footprint = ModelFootprint.load(models / "footprint.json")
        exp = train["experiment"]
        planned = planned_mb(footprint, exp["batch_size"], "train", exp["optimizer"])
        rows[name] = {
            "ranks": train["world_size"],
            "rank_gpus": train["rank_gpus"],
            "device": train["device"],
            "batch_size": exp["batch_size"],
            "best_val_mae": train["best_val_mae"],
            "train_seconds": train["train_seconds"],
            "gpu_peak_mb": train["gpu_peak_mb"],
            "planned_gpu_mb": round(planned),
        }
        if train["world_size"] != ranks or not str(train["device"]).startswith("GPU"):
            problems.append(f"{name}: {train['world_size']} rank(s) on {train['device']}")
        if len(set(train["rank_gpus"])) != train["world_size"]:
            problems.append(f"{name}: ranks share a GPU: {train['rank_gpus']}")
        if train["gpu_peak_mb"] is None or train["gpu_peak_mb"] > planned:
            problems.append(f"{name}: peak {train['gpu_peak_mb']} MB > planned {planned:.0f} MB")
    return rows


def check_claims(work: Path, problems: list[str]) -> int:
    """GPU claims the jobs logged; a model job other than training takes exactly one."""
    taken = 0
    for log in sorted((work / "logs").rglob("*.log")):
        text = log.read_text()
        if re.search(r"out of memory|OOM|ResourceExhausted", text):
            problems.append(f"{log.relative_to(work)}: out of GPU memory")
        for ids in re.findall(r"GPU\(s\) ([\d,]+) taken", text):
            if "train" not in log.parts and len(ids.split(",")) != 1:
                problems.append(f"{log.relative_to(work)}: took GPUs {ids}, not one")
            taken += 1
    if not taken:
        problems.append("no job logged the GPU it took")
    return taken


def check_predict(work: Path, problems: list[str]) -> dict[str, Any]:
    """One shard predicted on GPU and on CPU: the same bone ages, and images/s of each."""
    import pandas as pd

    model = work / "results/models/f32/model.keras"
    shard = sorted((work / "results/cohorts/tiny/shards").iterdir())[0]
    out: dict[str, Any] = {"shard": shard.name}
    preds = {}
    for where, gpu in (("gpu", True), ("cpu", False)):
        tsv, calib = work / f"check_{where}.tsv", work / f"check_{where}.json"
        for step, result in (("predict", tsv), ("calibrate", calib)):
            args = ("--model", str(model), "--shard", str(shard), "--out", str(result))
            proc = boneage(step, *args, "--threads", "16", gpu=gpu)
            if proc.returncode:
                problems.append(f"{step} on {where} failed:\n{proc.stderr[-2000:]}")
                return out
        preds[where] = pd.read_csv(tsv, sep="\t").set_index("id")["pred"]
        out[f"{where}_images_per_s"] = json.loads(calib.read_text())["images_per_s"]
    diff = float((preds["gpu"] - preds["cpu"].reindex(preds["gpu"].index)).abs().max())
    out |= {
        "images": len(preds["gpu"]),
        "max_abs_diff_months": diff,
        "tolerance_months": TOLERANCE_MONTHS,
    }
    out["gpu_over_cpu"] = round(out["gpu_images_per_s"] / out["cpu_images_per_s"], 2)
    if not diff <= TOLERANCE_MONTHS:
        problems.append(f"GPU and CPU predictions differ by {diff:.4f} months")
    return out


def check_allreduce(problems: list[str]) -> dict[str, Any]:
    """Two ranks, one GPU each, sum a tensor with Horovod over NCCL."""
    cmd = ["horovodrun", "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, "-c", ALLREDUCE]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    lines = [
        line.split("ALLREDUCE", 1)[1].split()
        for line in proc.stdout.splitlines()
        if "ALLREDUCE" in line
    ]
    ok = (
        proc.returncode == 0
        and len(lines) == 2
        and all("GPU" in r[1] and "3.0" in r[2] for r in lines)
    )
    if not ok:
        problems.append(
            f"NCCL allreduce between 2 GPUs failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
        )
    return {"ranks": len(lines), "passed": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="results JSON")
    ap.add_argument("--keep", type=Path, help="run here and keep the folder")
    a = ap.parse_args()
    n = gpu_count()
    results: dict[str, Any] = {"gpus": n, "gpu_memory_mb": gpu_memory_mb(), "problems": []}
    problems: list[str] = results["problems"]
    if n == 0:
        problems.append("no GPU listed by nvidia-smi -L: nothing to check here")
        write_json(a.out, results)
        print(problems[0], file=sys.stderr)
        return 2
    ranks = min(2, n)
    work = a.keep or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "cohorts": {"tiny": {"source": "synthetic", "n": 240, "seed": 3}},
        "train_cohorts": ["tiny"],
        "image_size": 128,
        "shards": {"size": 64},
        "experiments": EXPERIMENTS,
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    proc = snakemake(work, "--config", f"distributed={{ranks: {ranks}}}", profile="dgx")
    results["workflow_seconds"] = round(time.perf_counter() - start, 1)
    if proc.returncode:
        problems.append(f"the workflow failed:\n{tail(proc)}")
    else:
        results["training"] = check_training(work, ranks, problems)
        results["gpu_claims"] = check_claims(work, problems)
        if not (work / "results/report.html").is_file():
            problems.append("no report")
        results["predict"] = check_predict(work, problems)
    if n >= 2:
        results["nccl_allreduce"] = check_allreduce(problems)
    results["passed"] = not problems
    write_json(a.out, results)
    print(json.dumps({k: v for k, v in results.items() if k != "problems"}, indent=1))
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"work folder {work}; results in {a.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
