"""Steps of ``workflow/rules/train.smk``: model footprint, launcher, training."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from boneage.atomic import load_json, read_tsv
from boneage.cli.args import add_step
from boneage.config import section_defaults
from boneage.experiment import Experiment


def experiment_arg(value: str) -> Experiment:
    """``--experiment``: a settings file (named by its stem) or inline JSON (with a name)."""
    settings = load_json(value)
    name = settings.get("name") or (Path(value).stem if Path(value).is_file() else "inline")
    return Experiment.from_dict(str(name), settings)


def cmd_footprint(a: argparse.Namespace) -> None:
    """Count a model's parameters and activations, and measure a train step (for memory)."""
    from boneage.memory.measure import measure_train_step
    from boneage.memory.model import experiment_footprint, peak_memory

    exp = experiment_arg(a.experiment)
    footprint = experiment_footprint(exp)
    if not a.no_probe:
        footprint = measure_train_step(exp, footprint)
    footprint.save(a.out)
    batch = exp.host_batch
    print(
        f"{footprint.backbone} at {footprint.image_size} px: {footprint.params:,} parameters, "
        f"{footprint.activations:,} activation floats per image"
    )
    if footprint.train_peak_mb:
        print(f"train step measured: {footprint.train_peak_mb:,.0f} MB peak RSS at batch {batch}")
    print(f"train (batch {batch}): {peak_memory(footprint, 'train', batch).describe()}")
    print(f"predict (batch 64): {peak_memory(footprint, 'predict', 64).describe()}")


def cmd_probe_train(a: argparse.Namespace) -> None:
    """A few train steps on random data (run by `boneage footprint`, which measures its memory)."""
    from boneage.memory.measure import probe_train_step

    probe_train_step(experiment_arg(a.experiment), a.steps)


def cmd_launch(a: argparse.Namespace) -> None:
    """Run a command as N Horovod ranks (horovodrun, or the Slurm job's MPI launcher)."""
    from boneage.launch import launch

    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        sys.exit("boneage launch: give the command after --")
    sys.exit(
        launch(
            command,
            a.ranks,
            a.cpu_ranks * a.nodes,
            a.controller,
            mpi=a.mpi,
            launcher=a.launcher,
            nodes=a.nodes,
            cpus_per_task=a.cpus_per_task,
        )
    )


def cmd_train(a: argparse.Namespace) -> None:
    """Train one experiment (single process or Horovod ranks)."""
    from boneage.distribute import detect
    from boneage.memory.batch import resolve_batch_size
    from boneage.train import run_training

    exp = Experiment.from_dict(a.name, load_json(a.experiment))
    split = pd.concat([read_tsv(p) for p in a.split], ignore_index=True)
    shards = [s["path"] for p in a.index for s in load_json(p)["shards"]]
    summary = run_training(
        exp, shards, split, a.out_dir, detect(), a.threads, resolve_batch=resolve_batch_size
    )
    print(json.dumps({k: summary[k] for k in ("n_train", "best_val_mae", "train_seconds")}))


def cmd_fetch_weights(a: argparse.Namespace) -> None:
    """Download ImageNet weights into the Keras cache (on a machine with internet)."""
    import yaml

    from boneage.weights import IMAGENET, fetch, imagenet_file

    backbones = a.backbone
    if not backbones and Path(a.config).is_file():  # what the config's experiments start from
        experiments = (yaml.safe_load(Path(a.config).read_text()) or {}).get("experiments", {})
        picked = [Experiment.from_dict(n, e) for n, e in experiments.items()]
        backbones = sorted({e.backbone for e in picked if e.weights == "imagenet"})
    if not backbones:
        sys.exit(
            f"boneage fetch-weights: no experiment in {a.config} asks for weights: imagenet; "
            f"name backbones with --backbone ({', '.join(IMAGENET)})"
        )
    for backbone in backbones:
        cached = imagenet_file(backbone).is_file()
        path = imagenet_file(backbone) if cached else fetch(backbone)
        print(f"{backbone}: {path}{' (already there)' if cached else ''}")


def register(sub) -> None:
    """Add this module's subcommands."""
    from boneage.weights import IMAGENET

    s = add_step(sub, "fetch-weights", cmd_fetch_weights)
    s.add_argument(
        "--backbone",
        action="append",
        choices=sorted(IMAGENET),
        help="a backbone to fetch (repeat for more; default: those config.yaml asks for)",
    )
    s.add_argument("--config", default="config.yaml", help="default: %(default)s")
    s = add_step(sub, "footprint", cmd_footprint)
    s.add_argument(
        "--experiment", required=True, help="experiment settings: a JSON file (or inline JSON)"
    )
    s.add_argument("--out", required=True)
    s.add_argument("--no-probe", action="store_true", help="count only; measure no train step")

    s = add_step(sub, "probe-train", cmd_probe_train)
    s.add_argument("--experiment", required=True, help="a JSON file (or inline JSON)")
    s.add_argument("--steps", type=int, default=3)

    s = add_step(sub, "launch", cmd_launch)
    dist = section_defaults("distributed")
    s.add_argument("--ranks", type=int, default=dist["ranks"])
    s.add_argument(
        "--cpu-ranks", type=int, default=dist["cpu_ranks"], help="most ranks per node without a GPU"
    )
    s.add_argument("--nodes", type=int, default=dist["nodes"], help="nodes the ranks span")
    s.add_argument(
        "--cpus-per-task", type=int, help="cores of a rank under Slurm (srun -c; the job's)"
    )
    s.add_argument("--controller", choices=["gloo", "mpi"], default=dist["controller"])
    s.add_argument(
        "--mpi",
        action="store_true",
        help="plain MPI ranks (mpirun, or srun under Slurm), not Horovod training",
    )
    s.add_argument(
        "--launcher",
        default=section_defaults("cluster")["mpi"],
        help="how a Slurm job starts ranks: srun, mpiexec, mpirun (default: %(default)s)",
    )
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")

    s = add_step(sub, "train", cmd_train)
    s.add_argument("--name", required=True)
    s.add_argument("--experiment", required=True, help="experiment settings: a JSON file")
    s.add_argument("--index", nargs="+", required=True)
    s.add_argument("--split", nargs="+", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--threads", type=int)
