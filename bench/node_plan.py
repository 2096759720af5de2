"""Inference throughput: the planner's node layout against one single-threaded process per slot.

The cohort study's problem, scaled to this machine: memory, not cores,
limits how many predict processes share a node. The node here is this
machine's cores with just enough memory for ``--slots`` predict processes
(measured by `boneage calibrate`). Both layouts run the same per-shard
`boneage predict` jobs, ``slots`` at a time, over the same shards (the workflow's
default shards and images, 256 films at 128 px: per-job start-up weighs as at a site):

* seed layout: each process single-threaded, so cores - slots sit idle;
* planner layout (boneage plan): the same processes, each with
  floor(cores / slots) threads.

Both layouts run once untimed (files cached, imports warm), then alternate
over ``--rounds`` rounds (who goes first alternates too); each keeps its
best, so the machine's drift hits both alike. Prints every round, images/s
of both and their ratio, and exits 1 when the planner layout misses
:data:`TARGET` times the seed layout (2 when the plan gives one thread per
process: then there is nothing to compare).

    python bench/node_plan.py [--slots 1] [--shards 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workflow_cohort import workflow_cohort

#: The planner's threads must give at least this much over single-threaded slots.
TARGET = 1.3


def run_layout(model: str, shards: list[str], slots: int, threads: int, work: Path) -> float:
    """Images/s of per-shard predict jobs, ``slots`` at once, ``threads`` each."""
    from boneage.memory.calibrate import predict_command
    from boneage.shards import read_shard

    images = sum(len(read_shard(s, images=False)) for s in shards)

    def job(i_shard: tuple[int, str]) -> None:
        i, shard = i_shard
        out = str(work / f"{threads}_{i}.tsv")
        subprocess.run(predict_command(model, shard, out, threads), check=True, capture_output=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(job, enumerate(shards)))
    return images / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slots", type=int, default=1, help="predict processes memory allows")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    work = a.work or Path(tempfile.mkdtemp(prefix="boneage-plan-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from boneage.config import schema_default, section_defaults
    from boneage.memory.calibrate import calibrate_predict
    from boneage.memory.node import NODE_RESERVE_MB, plan_node, with_margin
    from boneage.models import build_model

    # A site's shards and images: the workflow's defaults (the per-job start-up, which
    # threads cannot speed up, weighs as it does there).
    size, side = section_defaults("shards")["size"], schema_default("image_size")
    shards, _, _ = workflow_cohort(work, n=a.shards * size + 64, shard_size=size, image_size=side)
    shards = shards[: a.shards]
    model = str(work / "model.keras")
    build_model(a.backbone, side).save(model)
    cores = os.cpu_count() or 1
    proc_mb = with_margin(calibrate_predict(model, shards[0], 1)["peak_rss_mb"])
    node_mb = NODE_RESERVE_MB + a.slots * proc_mb + proc_mb // 2  # room for `slots` processes
    plan = plan_node(node_mb, cores, proc_mb)
    print(f"node: {cores} cores, {node_mb} MB; one predict process {proc_mb} MB (measured)")
    print(f"plan: {plan.describe()}")
    if plan.threads < 2:
        print("the plan gives one thread per process: no layout to compare (exit 2)")
        return 2
    layouts = {"seed": 1, "planner": plan.threads}
    for threads in layouts.values():  # untimed: files cached, imports warm
        run_layout(model, shards[:1], plan.processes, threads, work)
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    for r in range(a.rounds):
        order = list(layouts) if r % 2 == 0 else list(reversed(layouts))
        for name in order:
            rates[name].append(run_layout(model, shards, plan.processes, layouts[name], work))
            print(f"round {r + 1}: {name:8s} {rates[name][-1]:6.1f} images/s", flush=True)
    seed, planned = max(rates["seed"]), max(rates["planner"])
    ratio = planned / seed
    print(
        f"{a.backbone} predict, {len(shards)} shards of {size} images at {side} px, "
        f"best of {a.rounds}:"
    )
    print(f"  seed layout    {plan.processes} x 1 thread : {seed:6.1f} images/s")
    print(f"  planner layout {plan.processes} x {plan.threads} threads: {planned:6.1f} images/s")
    print(
        f"  ratio planner / seed: {ratio:.2f} (target >= {TARGET}; cores busy "
        f"{plan.busy_cores} vs {plan.processes} of {cores})"
    )
    print("all targets met" if ratio >= TARGET else "MISSED: planner / seed")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
