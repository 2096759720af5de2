"""``boneage <step>``: one subcommand per workflow step, each a thin wrapper.

Each subcommand parses its arguments and calls one typed function of the
package. TensorFlow is imported only by ``train`` and ``predict``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from boneage.atomic import load_json, read_tsv, write_json, write_tsv


def cmd_synth(a: argparse.Namespace) -> None:
    from boneage.synth.cohort import make_cohort

    frame = make_cohort(a.out, a.n, a.seed, workers=a.workers, nonhand_share=a.nonhand_share,
                        inverted_share=a.inverted_share)
    print(f"wrote {len(frame)} studies to {a.out} ({(frame.kind != 'hand').sum()} non-hand, "
          f"{frame.inverted.sum()} inverted)")


def cmd_manifest(a: argparse.Namespace) -> None:
    from boneage.manifest import build_manifest

    spec = load_json(a.spec)
    checked, plan, unmatched = build_manifest(spec, a.shard_size)
    write_tsv(a.rows, checked)
    write_json(a.plan, {"shards": plan, "unmatched_corrections": unmatched})
    print(f"{len(checked)} rows: {int((checked.status == 'accepted').sum())} pass table checks, "
          f"{len(plan)} shards")
    if unmatched:
        print(f"warning: {len(unmatched)} correction(s) name ids not in the source: "
              f"{', '.join(unmatched[:10])}")


def cmd_shard(a: argparse.Namespace) -> None:
    from boneage.shards import build_shard

    plan = {s["shard"]: s["rows"] for s in json.loads(Path(a.plan).read_text())["shards"]}
    if a.shard not in plan:
        sys.exit(f"shard {a.shard!r} is not in {a.plan}")
    rows = read_tsv(a.rows).set_index("row").loc[plan[a.shard]].reset_index()
    verdicts = build_shard(rows, a.out, a.size, a.shard)
    write_tsv(a.qc, verdicts)
    print(f"{a.shard}: {int((verdicts.status == 'accepted').sum())}/{len(verdicts)} images kept")


def cmd_index(a: argparse.Namespace) -> None:
    from boneage.manifest import finalise, summarise

    checked = read_tsv(a.rows)
    manifest = finalise(checked, [read_tsv(p) for p in a.qc])
    write_tsv(a.manifest, manifest)
    counts = manifest[manifest.status == "accepted"].groupby("shard").size()
    shards = [{"shard": Path(p).stem, "path": p, "images": int(counts.get(Path(p).stem, 0))}
              for p in a.shards]
    write_json(a.index, {"shards": shards, "summary": summarise(manifest)})
    print(json.dumps(summarise(manifest)))


def cmd_split(a: argparse.Namespace) -> None:
    from boneage.split import make_split

    split = make_split(read_tsv(a.manifest), a.seed, a.val, a.test)
    write_tsv(a.out, split)
    print(split["subset"].value_counts().to_string())


def cmd_train(a: argparse.Namespace) -> None:
    from boneage.distribute import detect
    from boneage.train import Experiment, run_training

    exp = Experiment.from_dict(a.name, load_json(a.experiment))
    split = pd.concat([read_tsv(p) for p in a.split], ignore_index=True)
    shards = [s["path"] for p in a.index for s in json.loads(Path(p).read_text())["shards"]]
    summary = run_training(exp, shards, split, a.out_dir, detect(), threads=a.threads)
    print(json.dumps({k: summary[k] for k in ("n_train", "best_val_mae", "train_seconds")}))


def cmd_launch(a: argparse.Namespace) -> None:
    from boneage.launch import launch

    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        sys.exit("boneage launch: give the command after --")
    sys.exit(launch(command, a.ranks, a.cpu_ranks, a.controller, mpi=a.mpi,
                    launcher=a.launcher))


def cmd_predict(a: argparse.Namespace) -> None:
    from boneage.predict import predict_shard

    write_tsv(a.out, predict_shard(a.model, a.shard, batch_size=a.batch_size, threads=a.threads,
                                   tta=a.tta))


def cmd_predict_group(a: argparse.Namespace) -> None:
    from boneage.dispatch import SoloComm, run_group
    from boneage.distribute import set_threads
    from boneage.models import load_model
    from boneage.predict import predict_shard

    set_threads(a.threads)
    model = load_model(a.model)

    def predict(shard: str) -> pd.DataFrame:
        return predict_shard(model, shard, batch_size=a.batch_size, tta=a.tta)

    comm = SoloComm() if a.ranks == 1 else None  # one rank: no MPI needed
    table = run_group(a.shards, predict, comm=comm, log=lambda m: print(m, flush=True))
    if table is not None:
        write_tsv(a.out, table)
        print(f"{len(a.shards)} shards, {len(table)} images -> {a.out}")


def cmd_profile(a: argparse.Namespace) -> None:
    from boneage.memory import estimate, host_batch, profile_experiment

    exp = load_json(a.experiment)
    profile = profile_experiment(exp)
    profile.save(a.out)
    batch = host_batch(exp.get("batch_size", 32))
    print(f"{profile.backbone} at {profile.image_size} px: {profile.params:,} parameters, "
          f"{profile.activations:,} activation floats per image")
    print(f"train (batch {batch}): {estimate(profile, 'train', batch).describe()}")
    print(f"predict (batch 64): {estimate(profile, 'predict', 64).describe()}")


def cmd_calibrate(a: argparse.Namespace) -> None:
    from boneage.calibrate import calibrate_predict

    result = calibrate_predict(a.model, a.shard, a.threads, tta=a.tta, batch_size=a.batch_size)
    write_json(a.out, result)
    estimate = f" (estimate {result['estimate_mb']:.0f} MB)" if "estimate_mb" in result else ""
    print(f"predict on {result['images']} images: peak RSS {result['peak_rss_mb']:.0f} MB"
          f"{estimate}, {result['images_per_s']:.1f} images/s with {a.threads} thread(s)")


def cmd_aggregate(a: argparse.Namespace) -> None:
    from boneage.aggregate import aggregate

    train = json.loads(Path(a.train_summary).read_text())
    split = read_tsv(a.split) if a.split else None
    frame, result = aggregate([read_tsv(p) for p in a.predictions], split, train["train_mean"],
                              a.trained_on_cohort)
    result.update({"cohort": a.cohort, "experiment": a.experiment})
    write_tsv(a.out_tsv, frame)
    write_json(a.out_json, result)
    print(f"{a.experiment} on {a.cohort}: held-out MAE {result['label']['all'].get('mae', 0):.2f}")


def cmd_ensemble(a: argparse.Namespace) -> None:
    from boneage.aggregate import aggregate, ensemble_predictions

    members = [read_tsv(p) for p in a.members]
    means = [json.loads(Path(p).read_text())["train_mean"] for p in a.train_summaries]
    split = read_tsv(a.split) if a.split else None
    frame, result = aggregate([ensemble_predictions(members)], split, sum(means) / len(means),
                              a.trained_on_cohort)
    result.update({"cohort": a.cohort, "experiment": a.name, "members": a.member_names})
    write_tsv(a.out_tsv, frame)
    write_json(a.out_json, result)
    print(f"ensemble {a.name} on {a.cohort}: held-out MAE "
          f"{result['label']['all'].get('mae', float('nan')):.2f}")


def cmd_saliency(a: argparse.Namespace) -> None:
    from boneage.saliency import explain_cohort

    shards = [s["path"] for s in json.loads(Path(a.index).read_text())["shards"]]
    n = explain_cohort(a.model, read_tsv(a.predictions), shards, a.out)
    print(f"saliency maps for {n} example images")


def cmd_report(a: argparse.Namespace) -> None:
    from boneage.report.build import build_report

    build_report(a.results, a.benchmarks, a.config, a.out, a.run_info, a.executor)
    print(f"wrote {a.out}")


def cmd_summary(a: argparse.Namespace) -> None:
    from boneage.report.summary import print_summary

    print_summary(a.results)


def cmd_plan(a: argparse.Namespace) -> None:
    from boneage.resources import parse_size_mb, plan_node, predict_memory_mb

    try:
        if a.proc_mem:
            proc_mb = parse_size_mb(a.proc_mem)
        else:
            size = json.loads(Path(a.profile).read_text())["image_size"] if a.profile else 0
            proc_mb, source = predict_memory_mb(a.profile, a.calibration, size, a.shard_size,
                                                margin=a.margin)
            print(f"one predict process: {proc_mb} MB ({source})")
        plan = plan_node(parse_size_mb(a.node_mem), a.node_cores, proc_mb,
                         parse_size_mb(a.reserve))
    except (ValueError, OSError, KeyError) as exc:
        sys.exit(f"boneage plan: {exc}")
    print(plan.describe())


def cmd_check_config(a: argparse.Namespace) -> None:
    from boneage.config import ConfigError, load

    try:
        load(a.config)
    except ConfigError as exc:
        sys.exit(f"{a.config}: {exc}")
    print(f"{a.config}: valid")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every step."""
    p = argparse.ArgumentParser(prog="boneage", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="STEP")

    def add(name: str, func, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    s = add("synth", cmd_synth, "render a synthetic cohort in the RSNA training layout")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=2017)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--nonhand-share", type=float, default=0.03)
    s.add_argument("--inverted-share", type=float, default=0.03)

    s = add("manifest", cmd_manifest, "check source rows and plan the shards")
    s.add_argument("--spec", required=True, help="the cohort's config entry: a JSON file")
    s.add_argument("--shard-size", type=int, default=256)
    s.add_argument("--rows", required=True, help="output: checked rows (TSV)")
    s.add_argument("--plan", required=True, help="output: shard plan (JSON)")

    s = add("shard", cmd_shard, "decode, QC and preprocess one shard")
    s.add_argument("--rows", required=True)
    s.add_argument("--plan", required=True)
    s.add_argument("--shard", required=True)
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--out", required=True, help="output shard (.zarr or .h5)")
    s.add_argument("--qc", required=True, help="output: per-row verdicts (TSV)")

    s = add("index", cmd_index, "merge shard verdicts into the manifest and cohort index")
    s.add_argument("--rows", required=True)
    s.add_argument("--qc", nargs="*", default=[])
    s.add_argument("--shards", nargs="*", default=[])
    s.add_argument("--manifest", required=True)
    s.add_argument("--index", required=True)

    s = add("split", cmd_split, "split accepted images by patient")
    s.add_argument("--manifest", required=True)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--val", type=float, default=0.1)
    s.add_argument("--test", type=float, default=0.2)
    s.add_argument("--out", required=True)

    s = add("train", cmd_train, "train one experiment (single process or Horovod ranks)")
    s.add_argument("--name", required=True)
    s.add_argument("--experiment", required=True, help="experiment settings: a JSON file")
    s.add_argument("--index", nargs="+", required=True)
    s.add_argument("--split", nargs="+", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--threads", type=int)

    s = add("launch", cmd_launch, "run a command as N Horovod ranks (horovodrun or srun)")
    s.add_argument("--ranks", type=int, default=1)
    s.add_argument("--cpu-ranks", type=int, default=2, help="most ranks when there is no GPU")
    s.add_argument("--controller", choices=["gloo", "mpi"], default="gloo")
    s.add_argument("--mpi", action="store_true",
                   help="plain MPI ranks (mpirun, or srun under Slurm), not Horovod training")
    s.add_argument("--launcher", default="srun",
                   help="how a Slurm job starts ranks: srun (default), mpiexec, mpirun")
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")

    s = add("predict", cmd_predict, "predict bone age for one shard")
    s.add_argument("--model", required=True)
    s.add_argument("--shard", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--tta", action="store_true", help="average over test-time augmented views")

    s = add("predict-group", cmd_predict_group,
            "predict a group of shards as MPI ranks (run under boneage launch --mpi)")
    s.add_argument("--model", required=True)
    s.add_argument("--shards", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--ranks", type=int, default=0, help="ranks launched (1: no MPI)")
    s.add_argument("--threads", type=int)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--tta", action="store_true")

    s = add("profile", cmd_profile, "count a model's parameters and activations (for memory)")
    s.add_argument("--experiment", required=True,
                   help="experiment settings: a JSON file (or inline JSON)")
    s.add_argument("--out", required=True)

    s = add("calibrate", cmd_calibrate, "measure the peak memory of predict on one shard")
    s.add_argument("--model", required=True)
    s.add_argument("--shard", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--tta", action="store_true")

    s = add("aggregate", cmd_aggregate, "merge shard predictions and score a cohort")
    s.add_argument("--predictions", nargs="+", required=True)
    s.add_argument("--split")
    s.add_argument("--train-summary", required=True)
    s.add_argument("--trained-on-cohort", action="store_true")
    s.add_argument("--cohort", required=True)
    s.add_argument("--experiment", required=True)
    s.add_argument("--out-tsv", required=True)
    s.add_argument("--out-json", required=True)

    s = add("ensemble", cmd_ensemble, "average experiments' predictions and score a cohort")
    s.add_argument("--name", required=True)
    s.add_argument("--member-names", nargs="+", required=True)
    s.add_argument("--members", nargs="+", required=True, help="members' cohort predictions")
    s.add_argument("--train-summaries", nargs="+", required=True)
    s.add_argument("--split")
    s.add_argument("--trained-on-cohort", action="store_true")
    s.add_argument("--cohort", required=True)
    s.add_argument("--out-tsv", required=True)
    s.add_argument("--out-json", required=True)

    s = add("saliency", cmd_saliency, "saliency maps of typical and worst predictions")
    s.add_argument("--model", required=True)
    s.add_argument("--predictions", required=True, help="the cohort's aggregated predictions")
    s.add_argument("--index", required=True)
    s.add_argument("--out", required=True, help="output .npz")

    s = add("report", cmd_report, "write the self-contained HTML report")
    s.add_argument("--results", default="results")
    s.add_argument("--benchmarks", default="benchmarks")
    s.add_argument("--config", required=True, help="the run's resolved config: a JSON file")
    s.add_argument("--run-info", default="{}", help="JSON: mem_mb asked for by each step")
    s.add_argument("--executor", default="", help="Snakemake's executor (slurm, local, ...)")
    s.add_argument("--out", required=True)

    s = add("summary", cmd_summary, "print held-out accuracy against the baseline")
    s.add_argument("--results", default="results")

    s = add("plan", cmd_plan, "plan processes x threads per node from memory and cores")
    s.add_argument("--node-mem", required=True, help="node memory, e.g. 64G")
    s.add_argument("--node-cores", type=int, required=True)
    proc = s.add_mutually_exclusive_group(required=True)
    proc.add_argument("--proc-mem", help="peak memory of one process, e.g. 11G")
    proc.add_argument("--calibration", help="a calibration.json: its measured peak + margin")
    proc.add_argument("--profile", help="a profile.json: the model-based predict estimate")
    s.add_argument("--shard-size", type=int, default=256, help="with --profile")
    s.add_argument("--margin", type=float, default=0.2, help="headroom over a measured peak")
    s.add_argument("--reserve", default="2G", help="memory kept free for the system")

    s = add("check-config", cmd_check_config, "validate a config file against the schema")
    s.add_argument("config")
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``boneage`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow: warnings, not INFO chatter
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
