"""Steps of ``workflow/rules/predict.smk``: calibrate, predict, score, plan nodes."""

from __future__ import annotations

import argparse
import logging
import sys

import pandas as pd

from boneage.atomic import load_json, read_tsv, write_json, write_tsv
from boneage.cli.args import add_model_inputs, add_scoring, add_step
from boneage.config import section_defaults
from boneage.memory.node import NODE_RESERVE_MB


def cmd_calibrate(a: argparse.Namespace) -> None:
    """Measure the peak memory of predict on one shard."""
    from boneage.memory.calibrate import calibrate_predict

    result = calibrate_predict(a.model, a.shard, a.threads or 1, tta=a.tta, batch_size=a.batch_size)
    write_json(a.out, result)
    modelled = f" (estimate {result['estimate_mb']:.0f} MB)" if "estimate_mb" in result else ""
    print(
        f"predict on {result['images']} images: peak RSS {result['peak_rss_mb']:.0f} MB"
        f"{modelled}, {result['images_per_s']:.1f} images/s with {a.threads or 1} thread(s)"
    )


def cmd_predict(a: argparse.Namespace) -> None:
    """Predict bone age for one shard."""
    from boneage.distribute import set_threads
    from boneage.memory.batch import predict_batch
    from boneage.models import load_model
    from boneage.predict import predict_shard

    set_threads(a.threads)
    model = load_model(a.model)
    batch = predict_batch(model, a.batch_size)  # auto asks the GPU and sizes the model
    write_tsv(a.out, predict_shard(model, a.shard, batch_size=batch, tta=a.tta))


def cmd_estimate(a: argparse.Namespace) -> None:
    """One film: QC verdict, bone age in months and years, saliency overlay PNG.

    Exits 3 when the film fails QC (no bone age is given for it).
    """
    from pathlib import Path

    from boneage.film import estimate_film

    overlay = a.overlay or f"{Path(a.file).name}.saliency.png"
    try:
        result = estimate_film(
            a.model, a.file, a.sex, a.image_size, None if a.no_overlay else overlay
        )
    except ValueError as exc:  # a DecodeError or unknown sex: say it, no traceback
        sys.exit(f"boneage estimate: {exc}")
    verdict = "accepted" if result.accepted else f"rejected: {result.qc.reason}"
    print(f"film:     {a.file}")
    print(f"QC:       {verdict} ({result.qc.rule})")
    if result.qc.inverted:
        print("          inverted polarity, corrected")
    print(f"sex:      {result.sex}")
    if not result.accepted or result.months is None:
        sys.exit(3)
    print(f"bone age: {result.months:.1f} months ({result.months / 12:.1f} years)")
    if result.overlay:
        print(f"saliency: {result.overlay}")


def cmd_predict_group(a: argparse.Namespace) -> None:
    """Predict a group of shards as MPI ranks (run under boneage launch --mpi)."""
    from boneage.dispatch import SoloComm, run_group
    from boneage.distribute import set_threads
    from boneage.memory.batch import predict_batch
    from boneage.models import load_model
    from boneage.predict import predict_shard

    set_threads(a.threads)
    model = load_model(a.model)
    batch = predict_batch(model, a.batch_size)  # once: auto asks the GPU and sizes the model

    def predict(shard: str) -> pd.DataFrame:
        return predict_shard(model, shard, batch_size=batch, tta=a.tta)

    comm = SoloComm() if a.ranks == 1 else None  # one rank: no MPI needed
    log = logging.getLogger("boneage.dispatch")
    table = run_group(a.shards, predict, comm=comm, log=log.info)
    if table is not None:
        write_tsv(a.out, table)
        print(f"{len(a.shards)} shards, {len(table)} images -> {a.out}")


def _score(
    a: argparse.Namespace, frames: list[pd.DataFrame], train_mean: float, extra: dict
) -> dict:
    """Score a cohort's predictions and write both outputs; returns the metrics."""
    from boneage.aggregate import aggregate

    split = read_tsv(a.split) if a.split else None
    frame, result = aggregate(frames, split, train_mean, a.trained_on_cohort)
    result.update({"cohort": a.cohort, **extra})
    write_tsv(a.out_tsv, frame)
    write_json(a.out_json, result)
    return result


def cmd_aggregate(a: argparse.Namespace) -> None:
    """Merge shard predictions and score a cohort."""
    train = load_json(a.train_summary)
    result = _score(
        a, [read_tsv(p) for p in a.predictions], train["train_mean"], {"experiment": a.experiment}
    )
    print(f"{a.experiment} on {a.cohort}: held-out MAE {result['label']['all'].get('mae', 0):.2f}")


def cmd_ensemble(a: argparse.Namespace) -> None:
    """Average experiments' predictions and score a cohort."""
    from boneage.aggregate import ensemble_predictions
    from boneage.provenance import model_digest_of

    means = [load_json(p)["train_mean"] for p in a.train_summaries]
    members = [read_tsv(p) for p in a.members]
    result = _score(
        a,
        [ensemble_predictions(members)],
        sum(means) / len(means),
        {
            "experiment": a.name,
            "members": a.member_names,
            "member_digests": [model_digest_of(m) for m in members],
        },
    )
    print(
        f"ensemble {a.name} on {a.cohort}: held-out MAE "
        f"{result['label']['all'].get('mae', float('nan')):.2f}"
    )


def cmd_plan(a: argparse.Namespace) -> None:
    """Plan processes x threads per node from memory and cores."""
    from boneage.memory.node import parse_size_mb, plan_node, predict_memory_mb

    try:
        if a.proc_mem:
            proc_mb = parse_size_mb(a.proc_mem)
        else:
            size = load_json(a.footprint)["image_size"] if a.footprint else 0
            proc_mb, source = predict_memory_mb(
                a.footprint, a.calibration, size, a.shard_size, margin=a.margin
            )
            print(f"one predict process: {proc_mb} MB ({source})")
        plan = plan_node(parse_size_mb(a.node_mem), a.node_cores, proc_mb, parse_size_mb(a.reserve))
    except (ValueError, OSError, KeyError) as exc:
        sys.exit(f"boneage plan: {exc}")
    print(plan.describe())


def register(sub) -> None:
    """Add this module's subcommands."""
    add_model_inputs(add_step(sub, "calibrate", cmd_calibrate))
    add_model_inputs(add_step(sub, "predict", cmd_predict))
    s = add_step(sub, "estimate", cmd_estimate)
    s.add_argument("--model", required=True, help="results/models/<experiment>/model.keras")
    s.add_argument("file", help="one PNG or DICOM film")
    s.add_argument("--sex", choices=["F", "M"], help="default: the DICOM header's PatientSex")
    s.add_argument(
        "--image-size",
        type=int,
        help="the run's shard image size (config image_size; default: the model's input size)",
    )
    s.add_argument("--overlay", help="saliency PNG to write (default: FILE.saliency.png here)")
    s.add_argument("--no-overlay", action="store_true", help="skip the saliency map")
    s = add_step(sub, "predict-group", cmd_predict_group)
    add_model_inputs(s, shards=True)
    s.add_argument("--ranks", type=int, default=0, help="ranks launched (1: no MPI)")

    s = add_step(sub, "aggregate", cmd_aggregate)
    s.add_argument("--predictions", nargs="+", required=True)
    s.add_argument("--train-summary", required=True)
    s.add_argument("--experiment", required=True)
    add_scoring(s)

    s = add_step(sub, "ensemble", cmd_ensemble)
    s.add_argument("--name", required=True)
    s.add_argument("--member-names", nargs="+", required=True)
    s.add_argument("--members", nargs="+", required=True, help="members' cohort predictions")
    s.add_argument("--train-summaries", nargs="+", required=True)
    add_scoring(s)

    s = add_step(sub, "plan", cmd_plan)
    s.add_argument("--node-mem", required=True, help="node memory, e.g. 64G")
    s.add_argument("--node-cores", type=int, required=True)
    proc = s.add_mutually_exclusive_group(required=True)
    proc.add_argument("--proc-mem", help="peak memory of one process, e.g. 11G")
    proc.add_argument("--calibration", help="a calibration.json: its measured peak + margin")
    proc.add_argument("--footprint", help="a footprint.json: the model-based predict estimate")
    cluster = section_defaults("cluster")
    shard_size = section_defaults("shards")["size"]
    s.add_argument("--shard-size", type=int, default=shard_size, help="with --footprint")
    s.add_argument(
        "--margin", type=float, default=cluster["memory_margin"], help="headroom over a peak"
    )
    s.add_argument(
        "--reserve",
        default=cluster["reserve"] or f"{NODE_RESERVE_MB}M",
        help="memory kept free for the system (default: %(default)s)",
    )
