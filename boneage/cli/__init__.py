"""``boneage <step>``: one subcommand per workflow step, each a thin wrapper.

The modules mirror the rule files (``workflow/rules/<stage>.smk``): each
registers its steps' parsers and wraps one typed function of the package
per step. TensorFlow is imported only by the steps that run a model.
"""

from __future__ import annotations

import argparse
import os

from boneage import gpus
from boneage.cli import config, ingest, predict, report, split, synth, train
from boneage.log import setup as setup_logging

#: The modules that register subcommands, in the order ``boneage --help`` lists them.
STAGES = (config, synth, ingest, split, train, predict, report)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every step."""
    p = argparse.ArgumentParser(prog="boneage", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True, metavar="STEP")
    for stage in STAGES:
        stage.register(sub)
    return p


#: Steps that run a model: each takes one GPU where there are GPUs (a training rank takes
#: the one its launcher claimed for it). Every other step sees none (boneage.gpus).
GPU_STEPS = {"footprint", "probe-train", "train", "calibrate", "predict", "saliency", "estimate"}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``boneage`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow: warnings, not INFO chatter
    args = build_parser().parse_args(argv)
    setup_logging()
    held = devices_for(args)  # noqa: F841 - the GPU locks live as long as this process
    args.func(args)


def devices_for(args: argparse.Namespace) -> gpus.Claim | None:
    """The GPUs of this step: one for a model step (memory growth on), all its ranks' for a
    Horovod launch, each rank its own in grouped predict; none for the others."""
    if args.step == "launch":
        if args.mpi:  # plain MPI ranks (grouped predict) claim their own
            return None
        return gpus.claim(min(args.ranks, len(gpus.machine_gpus())))
    if args.step in GPU_STEPS or args.step == "predict-group":
        held = gpus.claim(1)
        if held.ids and args.step != "train":  # training sets up its devices itself
            from boneage.distribute import memory_growth

            memory_growth()
        return held
    gpus.hide_gpus()
    return None
