"""Gather what the report shows from the workflow's output folders (no TensorFlow)."""

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
    """Everything under ``results/`` and ``benchmarks/`` that the report uses."""

    manifests: dict[str, pd.DataFrame] = field(default_factory=dict)
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    train: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    predictions: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    benchmarks: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)


def collect(results: str | os.PathLike[str], benchmarks: str | os.PathLike[str]) -> RunResults:
    """Read manifests, training histories, metrics, predictions and benchmark files."""
    res, out = Path(results), RunResults()
    for p in sorted(res.glob("cohorts/*/manifest.tsv")):
        out.manifests[p.parent.name] = read_tsv(p)
    for p in sorted(res.glob("models/*/train.json")):
        out.train[p.parent.name] = json.loads(p.read_text())
        cal = p.parent / "calibration.json"
        if cal.exists():
            out.calibration[p.parent.name] = json.loads(cal.read_text())
        hist = p.parent / "history.tsv"
        if hist.exists():
            out.histories[p.parent.name] = read_tsv(hist)
    for p in sorted(res.glob("metrics/*/*.json")):
        out.metrics[(p.parent.name, p.stem)] = json.loads(p.read_text())
        pred = res / "predictions" / p.parent.name / f"{p.stem}.tsv"
        if pred.exists():
            out.predictions[(p.parent.name, p.stem)] = read_tsv(pred)
    out.benchmarks = read_benchmarks(benchmarks)
    return out


def read_benchmarks(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Snakemake ``benchmark:`` files as one table: step, target, seconds, max_rss (MB)."""
    rows = []
    root = Path(folder)
    for p in sorted(root.rglob("*.tsv")) if root.exists() else []:
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
