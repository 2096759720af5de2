"""Argument helpers shared by the step modules: one definition per repeated option."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from boneage.config import section_defaults

Command = Callable[[argparse.Namespace], None]


def add_step(sub: Any, name: str, func: Command) -> argparse.ArgumentParser:
    """Register subcommand ``name``; its help is the first line of ``func``'s docstring."""
    text = (func.__doc__ or name).strip().splitlines()[0].rstrip(".")
    parser = sub.add_parser(name, help=text, description=text)
    parser.set_defaults(func=func)
    return parser


def batch_size(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a positive integer nor auto")
    return int(text)


def add_model_inputs(p: argparse.ArgumentParser, shards: bool = False) -> None:
    """``--model``, ``--shard`` (or ``--shards``), ``--out``, threads, batch size and TTA."""
    p.add_argument("--model", required=True, help="a trained model.keras")
    if shards:
        p.add_argument("--shards", nargs="+", required=True)
    else:
        p.add_argument("--shard", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, help="intra-op threads (default: TensorFlow's)")
    p.add_argument(
        "--batch-size",
        type=batch_size,
        default=section_defaults("predict")["batch_size"],
        help="images per model call, or auto (64 on CPU, what the GPU holds on a GPU)",
    )
    p.add_argument("--tta", action="store_true", help="average over test-time augmented views")


def add_scoring(p: argparse.ArgumentParser) -> None:
    """The options of a step that scores a cohort's predictions (aggregate, ensemble)."""
    p.add_argument("--split")
    p.add_argument("--trained-on-cohort", action="store_true")
    p.add_argument("--cohort", required=True)
    p.add_argument("--out-tsv", required=True)
    p.add_argument("--out-json", required=True)
