"""Steps of ``workflow/rules/report.smk``: saliency maps, the report, the summary."""

from __future__ import annotations

import argparse

from boneage.atomic import load_json, read_tsv
from boneage.cli.args import add_step


def cmd_saliency(a: argparse.Namespace) -> None:
    """Saliency maps of typical and worst predictions."""
    from boneage.saliency import explain_cohort

    shards = [s["path"] for s in load_json(a.index)["shards"]]
    n = explain_cohort(a.model, read_tsv(a.predictions), shards, a.out)
    print(f"saliency maps for {n} example images")


def cmd_report(a: argparse.Namespace) -> None:
    """Write the self-contained HTML report."""
    from boneage.report.build import build_report

    build_report(a.results, a.benchmarks, a.config, a.out, a.run_info, a.executor)
    print(f"wrote {a.out}")


def cmd_summary(a: argparse.Namespace) -> None:
    """Print held-out accuracy against the baseline."""
    from boneage.report.summary import print_summary

    print_summary(a.results)


def register(sub) -> None:
    """Add this module's subcommands."""
    s = add_step(sub, "saliency", cmd_saliency)
    s.add_argument("--model", required=True)
    s.add_argument("--predictions", required=True, help="the cohort's aggregated predictions")
    s.add_argument("--index", required=True)
    s.add_argument("--out", required=True, help="output .npz")

    s = add_step(sub, "report", cmd_report)
    s.add_argument("--results", default="results")
    s.add_argument("--benchmarks", default="benchmarks")
    s.add_argument("--config", required=True, help="the run's resolved config: a JSON file")
    s.add_argument("--run-info", default="{}", help="JSON: mem_mb asked for by each step")
    s.add_argument("--executor", default="", help="Snakemake's executor (slurm, local, ...)")
    s.add_argument("--out", required=True)

    add_step(sub, "summary", cmd_summary).add_argument("--results", default="results")
