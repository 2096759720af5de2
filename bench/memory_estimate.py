"""The planner's memory estimate against measured peak RSS, train and predict, in one run.

Makes a small synthetic cohort with the workflow (400 films at 128 px, up to
its index and split), then for each case runs the real CLI step as a child
process (`boneage predict` on a shard; `boneage train` for one epoch) and
reads the child's peak resident memory from the kernel (wait4 rusage),
next to boneage.memory.model's estimate for the same model, batch and data.
Predict rows: the model-based estimate. Train rows: what the planner asks
for, the profile job's measured train step (a few steps on random data, see
boneage.memory.measure.probe_train_step) plus the estimated data. Target: every
figure within +-25 % of the measurement, both on the cases the constants
were fitted to (small_cnn, resnet50, vgg16 at 128 px) and out of sample:
inceptionv3, efficientnetb0 and vgg19 at other sizes and batches.

    python bench/memory_estimate.py [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
from workflow_cohort import workflow_cohort

#: (backbone, image size, batch, in the fit?) per step.
PREDICT = [
    ("small_cnn", 128, 64, True),
    ("resnet50", 128, 32, True),
    ("vgg16", 128, 32, True),
    ("efficientnetb0", 128, 32, False),
    ("inceptionv3", 160, 24, False),
    ("vgg19", 96, 48, False),
    ("efficientnetb0", 224, 8, False),
]
TRAIN = [
    ("small_cnn", 128, 32, True),
    ("resnet50", 128, 16, True),
    ("efficientnetb0", 128, 16, False),
    ("inceptionv3", 96, 8, False),
    ("vgg19", 64, 24, False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="boneage-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from boneage.experiment import Experiment
    from boneage.memory.measure import measure, measure_train_step
    from boneage.memory.model import experiment_footprint, peak_memory
    from boneage.models import build_model
    from boneage.shards import read_shard

    def peak_mb(cmd: list[str]) -> float:
        with open(work / "bench.log", "a") as log:
            m = measure(
                [sys.executable, "-m", "boneage.cli", *cmd], stdout=log, stderr=log, cwd=work
            )  # the index names shards relative to the workflow
        if m.returncode:
            raise SystemExit(f"failed ({m.returncode}, see {work}/bench.log): boneage {cmd[0]}")
        return m.peak_rss_mb

    shards, index, split = workflow_cohort(work)
    shutil.rmtree(work / "models", ignore_errors=True)  # a rerun must train, not resume
    n_train = int((pd.read_csv(split, sep="\t")["subset"] == "train").sum())
    images = len(read_shard(shards[0], images=False))
    rows = []
    for backbone, size, batch, fitted in PREDICT:
        model = work / f"{backbone}-{size}.keras"
        build_model(backbone, size).save(model)
        prof = experiment_footprint(Experiment("bench", backbone=backbone, image_size=size))
        est = peak_memory(prof, "predict", batch, shard_images=images, stored_size=128)
        peak = peak_mb(
            [
                "predict",
                "--model",
                str(model),
                "--shard",
                shards[0],
                "--out",
                str(work / "p.tsv"),
                "--threads",
                "1",
                "--batch-size",
                str(batch),
            ]
        )
        rows.append(("predict", backbone, size, batch, fitted, est.total, peak))
    for backbone, size, batch, fitted in TRAIN:
        exp = Experiment(
            "bench", backbone=backbone, image_size=size, batch_size=batch, epochs=1, augment=True
        )
        # What the planner uses: the profile job's measured train step, plus the data.
        prof = measure_train_step(exp, experiment_footprint(exp))
        est = peak_memory(prof, "train", batch, examples=n_train, stored_size=128)
        peak = peak_mb(
            [
                "train",
                "--name",
                f"{backbone}-{size}",
                "--experiment",
                json.dumps(exp),
                "--index",
                str(index),
                "--split",
                str(split),
                "--out-dir",
                str(work / "models" / f"{backbone}-{size}"),
                "--threads",
                "2",
            ]
        )
        rows.append(("train", backbone, size, batch, fitted, est.total, peak))
    print(
        f"{'step':8} {'model':15} {'size':>4} {'batch':>5} {'sample':>6} {'estimate MB':>11} "
        f"{'measured MB':>11} {'est/meas':>8}"
    )
    worst = {True: 0.0, False: 0.0}
    for step, backbone, size, batch, fitted, est_mb, peak in rows:
        ratio = est_mb / peak
        worst[fitted] = max(worst[fitted], abs(ratio - 1))
        where = "in" if fitted else "out"
        print(
            f"{step:8} {backbone:15} {size:4d} {batch:5d} {where:>6} {est_mb:11.0f} "
            f"{peak:11.0f} {ratio:8.2f}"
        )
    print(f"largest deviation in sample: {worst[True]:.0%}, out of sample: {worst[False]:.0%}")
    print("target <= 25% for both")
    return 0 if max(worst.values()) <= 0.25 else 2


if __name__ == "__main__":
    sys.exit(main())
