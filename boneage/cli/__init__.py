"""``boneage <step>``: one subcommand per workflow step, each a thin wrapper.

The modules mirror the rule files (``workflow/rules/<stage>.smk``): each
registers its steps' parsers and wraps one typed function of the package
per step. TensorFlow is imported only by the steps that run a model.
"""

from __future__ import annotations

import argparse
import os

from boneage.cli import config, ingest, predict, report, split, synth, train
from boneage.log import setup as setup_logging

#: The modules that register subcommands, in the order ``boneage --help`` lists them.
STAGES = (config, synth, ingest, split, train, predict, report)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every step."""
    p = argparse.ArgumentParser(prog="boneage", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="STEP")
    for stage in STAGES:
        stage.register(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``boneage`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow: warnings, not INFO chatter
    args = build_parser().parse_args(argv)
    setup_logging()
    args.func(args)
