"""Steps of ``workflow/rules/synth.smk``: the built-in synthetic cohort."""

from __future__ import annotations

import argparse

from boneage.cli.args import add_step
from boneage.config import source_defaults


def cmd_synth(a: argparse.Namespace) -> None:
    """Render a synthetic cohort in the RSNA training layout."""
    from boneage.synth.cohort import make_cohort

    frame = make_cohort(
        a.out,
        a.n,
        a.seed,
        workers=a.workers,
        nonhand_share=a.nonhand_share,
        inverted_share=a.inverted_share,
        hard_share=a.hard_share,
    )
    print(
        f"wrote {len(frame)} studies to {a.out} ({(frame.kind != 'hand').sum()} non-hand, "
        f"{frame.inverted.sum()} inverted, {(frame.pose != 'open').sum()} hard-to-see hands)"
    )


def register(sub) -> None:
    """Add this module's subcommands."""
    s = add_step(sub, "synth", cmd_synth)
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, required=True)
    d = source_defaults("synthetic")
    s.add_argument("--seed", type=int, default=d["seed"])
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--nonhand-share", type=float, default=d["nonhand_share"])
    s.add_argument("--inverted-share", type=float, default=d["inverted_share"])
    s.add_argument("--hard-share", type=float, default=d["hard_share"])
