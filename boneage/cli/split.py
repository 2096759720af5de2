"""Steps of ``workflow/rules/split.smk``: train/val/test by patient."""

from __future__ import annotations

import argparse

from boneage.atomic import read_tsv, write_tsv
from boneage.cli.args import add_step
from boneage.config import section_defaults


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
    d = section_defaults("split")
    s.add_argument("--seed", type=int, default=d["seed"])
    s.add_argument("--val", type=float, default=d["val"])
    s.add_argument("--test", type=float, default=d["test"])
    s.add_argument("--out", required=True)
