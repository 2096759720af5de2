"""Gather what the report shows: exactly the files the run's config names (no TensorFlow)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from boneage.atomic import read_tsv


@dataclass
class RunResults:
    """Everything under ``results/`` and ``benchmarks/`` that the report uses (keyed by name)."""

    manifests: dict[str, pd.DataFrame] = field(default_factory=dict)
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    train: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    predictions: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    benchmarks: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)


def private_rows(results: str | os.PathLike[str], cohort: str) -> Path:
    """A cohort's rows table (source paths: private/, beside results/, stays at the site)."""
    return Path(results).parent / "private" / "cohorts" / cohort / "rows.tsv"


def report_files(
    config: dict[str, Any], results: str = "results", benchmarks: str = "benchmarks"
) -> dict[str, list[str]]:
    """Every file the report reads, by kind: the report rule declares them all.

    Derived from the run's config alone (no globbing), so a file an earlier
    config left behind never reaches a new report. The per-shard benchmark
    files (shard and predict jobs, thousands at cohort scale) are not
    declared: they are read for exactly the shards the declared indexes list
    (see :func:`shard_benchmarks`), and their jobs rerun whenever a declared
    input changes.
    """
    r, b = results, benchmarks
    cohorts = list(config["cohorts"])
    experiments = list(config["experiments"])
    scored = experiments + list(config.get("aggregate", {}).get("ensembles", {}))
    ensembles = scored[len(experiments) :]
    calibrating = bool(config.get("predict", {}).get("calibrate"))
    per_cohort = ("manifest", "index", "split")
    return {
        "manifests": [f"{r}/cohorts/{c}/manifest.tsv" for c in cohorts],
        "rows": [str(private_rows(r, c)) for c in cohorts],
        "indexes": [f"{r}/cohorts/{c}/index.json" for c in cohorts],
        "splits": [f"{r}/cohorts/{c}/split.tsv" for c in cohorts],
        "train": [f"{r}/models/{e}/train.json" for e in experiments],
        "histories": [f"{r}/models/{e}/history.tsv" for e in experiments],
        "calibrations": [f"{r}/models/{e}/calibration.json" for e in experiments]
        if calibrating
        else [],
        "metrics": [f"{r}/metrics/{s}/{c}.json" for s in scored for c in cohorts],
        "predictions": [f"{r}/predictions/{s}/{c}.tsv" for s in scored for c in cohorts],
        "saliency": [f"{r}/saliency/{e}/{c}.npz" for e in experiments for c in cohorts],
        "benchmarks": [f"{b}/{step}/{c}.tsv" for step in per_cohort for c in cohorts]
        + [f"{b}/{step}/{e}.tsv" for step in ("footprint", "train") for e in experiments]
        + ([f"{b}/calibrate/{e}.tsv" for e in experiments] if calibrating else [])
        + [
            f"{b}/{step}/{e}/{c}.tsv"
            for step in ("aggregate", "saliency")
            for e in experiments
            for c in cohorts
        ]
        + [f"{b}/ensemble/{e}/{c}.tsv" for e in ensembles for c in cohorts],
    }


def shard_benchmarks(
    config: dict[str, Any], indexes: dict[str, dict[str, Any]], benchmarks: str = "benchmarks"
) -> list[str]:
    """Benchmark files of the shard and predict jobs of the shards the indexes list."""
    from boneage.memory.node import Node
    from boneage.plan import RunPlan

    plan = RunPlan(config, lambda: Node.from_config(config.get("cluster", {})))
    files = []
    for cohort, index in indexes.items():
        shards = [s["shard"] for s in index["shards"]]
        files += [f"{benchmarks}/shard/{cohort}/{s}.tsv" for s in shards]
        for e in config["experiments"]:
            files += [
                f"{benchmarks}/predict/{e}/{cohort}/{p}.tsv" for p in plan.prediction_parts(shards)
            ]
    return files


def collect(
    config: dict[str, Any], results: str = "results", benchmarks: str = "benchmarks"
) -> RunResults:
    """Read exactly the files :func:`report_files` names (and the shards' benchmarks)."""
    files = report_files(config, str(results), str(benchmarks))
    out = RunResults()
    for p in map(Path, files["manifests"]):
        out.manifests[p.parent.name] = read_tsv(p)
    for kind, target in (("train", out.train), ("calibrations", out.calibration)):
        for p in map(Path, files[kind]):
            target[p.parent.name] = json.loads(p.read_text())
    for p in map(Path, files["histories"]):
        out.histories[p.parent.name] = read_tsv(p)
    for m, t in zip(map(Path, files["metrics"]), files["predictions"]):
        out.metrics[(m.parent.name, m.stem)] = json.loads(m.read_text())
        out.predictions[(m.parent.name, m.stem)] = read_tsv(t)
    indexes = {Path(p).parent.name: json.loads(Path(p).read_text()) for p in files["indexes"]}
    timed = files["benchmarks"] + shard_benchmarks(config, indexes, str(benchmarks))
    out.benchmarks = read_benchmarks(benchmarks, timed)
    return out


def read_benchmarks(folder: str | os.PathLike[str], paths: list[str] | None = None) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files (``paths`` under ``folder``; None: all) as one table.

    Columns: step, target, seconds, max_rss (MB). A file not there (a job
    that has not run under this name) is left out.
    """
    rows = []
    root = Path(folder)
    if paths is None:
        paths = sorted(map(str, root.rglob("*.tsv"))) if root.exists() else []
    for p in map(Path, paths):
        if not p.exists():
            continue
        try:
            b = pd.read_csv(p, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError):
            continue
        if b.empty or "s" not in b:
            continue
        rel = p.relative_to(root)
        rss = pd.to_numeric(b.get("max_rss", pd.Series([float("nan")])), errors="coerce")
        rows.append(
            {
                "step": rel.parts[0],
                "target": "/".join(rel.with_suffix("").parts[1:]),
                "seconds": float(b["s"].iloc[-1]),
                "max_rss_mb": float(rss.iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["step", "target", "seconds", "max_rss_mb"])
