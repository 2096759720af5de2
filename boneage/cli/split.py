"""Steps of ``workflow/rules/split.smk``: train/val/test by patient."""

from __future__ import annotations

import argparse

from boneage.atomic import read_tsv, write_tsv
from boneage.cli.args import add_step


def cmd_split(a: argparse.Namespace) -> None:
    """Split accepted images by patient."""
    from boneage.split import make_split

    split = make_split(read_tsv(a.manifest), a.seed, a.val, a.test)
    write_tsv(a.out, split)
    print(split["subset"].value_counts().to_string())


def register(sub) -> None:
    """Add this module's subcommands."""
    s = add_step(sub, "split", cmd_split)
    s.add_argument("--manifest", required=True)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--val", type=float, default=0.1)
    s.add_argument("--test", type=float, default=0.2)
    s.add_argument("--out", required=True)
