"""Build ``results/report.html``: one self-contained file (plots inlined, no network)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from boneage.atomic import load_json, write_text
from boneage.config import public_config, section_defaults
from boneage.corrections import COLUMNS as CORRECTION_COLUMNS
from boneage.labels import ALL_STATUSES
from boneage.manifest import REASONS, summarise
from boneage.metrics import WITHIN_MONTHS
from boneage.provenance import INPUT_PARTS, ensemble_digest, package_versions, short
from boneage.report import plots
from boneage.report.chrono import chrono_comparison
from boneage.report.collect import RunResults, collect
from boneage.report.model_card import BANDS, model_cards
from boneage.report.review import (
    earlier_corrections,
    label_review,
    qc_gallery,
    saliency_examples,
)


def git_commit() -> str:
    """The workflow's git commit (``unknown`` outside a checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cohort_sections(run: RunResults, results: Path) -> list[dict[str, Any]]:
    """Per (experiment, cohort): metric tables, figures and saliency examples."""
    sections = []
    for (exp, cohort), m in sorted(run.metrics.items()):
        frame = run.predictions.get((exp, cohort))
        held = (
            frame
            if frame is None or m["held_out"] == "all images"
            else frame[frame["subset"] == "test"]
        )
        figs = []
        if held is not None and len(held):
            ref = "true_boneage" if "true" in m else "boneage"
            figs = [
                ("Predicted vs label", plots.scatter(held, "boneage", "predicted vs label")),
                (
                    "Bland-Altman plot against the label",
                    plots.bland_altman(held, "boneage", "Bland-Altman vs label"),
                ),
                (
                    f"Absolute error by age band ({ref.replace('_', ' ')})",
                    plots.error_by_band(held, ref, "error by age band"),
                ),
            ]
            if "true" in m:
                figs.insert(
                    1,
                    (
                        "Predicted vs true bone age",
                        plots.scatter(held, "true_boneage", "predicted vs true age"),
                    ),
                )
        refs = [("label", m["label"])] + ([("true age", m["true"])] if "true" in m else [])
        examples = saliency_examples(results / "saliency" / exp / f"{cohort}.npz")
        sections.append(
            {
                "experiment": exp,
                "cohort": cohort,
                "m": m,
                "refs": refs,
                "figures": figs,
                "examples": examples,
            }
        )
    return sections


def experiment_table(run: RunResults) -> list[dict[str, Any]]:
    """One row per trained experiment or ensemble: settings, training and held-out MAE."""
    rows = []
    scored = sorted({exp for exp, _ in run.metrics} | set(run.train))
    for name in scored:
        t = run.train.get(name, {})
        e = t.get("experiment", {})
        mae = {c: m["label"]["all"].get("mae") for (x, c), m in run.metrics.items() if x == name}
        members = next(
            (
                m.get("members")
                for (x, _), m in run.metrics.items()
                if x == name and m.get("members")
            ),
            None,
        )
        rows.append(
            {
                "name": name,
                "backbone": e.get("backbone", "ensemble" if members else ""),
                "loss": e.get("loss", ""),
                "sex_mode": e.get("sex_mode", ""),
                "image_size": e.get("image_size", ""),
                "epochs": t.get("epochs_run", ""),
                "ranks": t.get("world_size", ""),
                "device": t.get("device", ""),
                "val_mae": t.get("best_val_mae"),
                "seconds": t.get("train_seconds", ""),
                "mae": mae,
                "members": members,
            }
        )
    return rows


def provenance(run: RunResults, ensembles: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Per model: its digest and its inputs' digests; per cohort, whether the metrics match.

    A metrics file whose model digest differs from the current model's (an
    ensemble's: from its members') was made by another model: ``stale``.
    """
    rows = []
    for name in sorted({x for x, _ in run.metrics} | set(run.train)):
        t = run.train.get(name, {})
        digest: str | None
        if name in ensembles:
            digest = ensemble_digest(
                [run.train.get(m, {}).get("model_digest") for m in ensembles[name]]
            )
        else:
            digest = t.get("model_digest")
        cohorts = [
            {
                "cohort": c,
                "model_digest": m.get("model_digest"),
                "stale": m.get("model_digest") != digest,
            }
            for (x, c), m in sorted(run.metrics.items())
            if x == name
        ]
        rows.append(
            {
                "name": name,
                "model_digest": digest,
                "members": ensembles.get(name),
                "inputs": t.get("inputs", {}),
                "tensorflow": t.get("versions", {}).get("tensorflow")
                or t.get("versions", {}).get("tensorflow-cpu"),
                "cohorts": cohorts,
                "stale": any(c["stale"] for c in cohorts),
            }
        )
    return rows


def where_planned(cluster: dict, executor: str = "") -> dict:
    """The executor the workflow ran under, and the node it planned jobs for.

    ``executor`` is Snakemake's (the report is a local job in the main
    Snakemake; without it, a Slurm job's environment says Slurm). The same
    rule as the workflow's: on Slurm, the node from config ``cluster`` and
    sinfo; otherwise this machine (boneage.memory.node.Node).
    """
    from boneage.memory.node import Node

    slurm = executor == "slurm" if executor else "SLURM_JOB_ID" in os.environ
    node = Node.from_config(cluster, slurm=slurm)
    return {
        "executor": "slurm" if slurm else "local",
        "node": {
            "mem_mb": node.mem_mb,
            "cores": node.cores,
            "reserve_mb": node.reserve_mb,
            "margin": node.margin,
        },
    }


def memory_plans(calibration: dict[str, dict], node: dict | None) -> list[dict]:
    """Per model: predict's measured peak memory, the estimate, and the node plan it gives."""
    from boneage.memory.node import NODE_RESERVE_MB, plan_node, with_margin

    rows = []
    for name, cal in sorted(calibration.items()):
        row = {"experiment": name, **cal, "plan": None}
        if node:
            try:
                proc = with_margin(cal["peak_rss_mb"], node.get("margin", 0.2))
                row["plan"] = plan_node(
                    node["mem_mb"], node["cores"], proc, node.get("reserve_mb", NODE_RESERVE_MB)
                ).describe()
            except ValueError as exc:
                row["plan"] = str(exc)
        rows.append(row)
    return rows


def qc_sections(run: RunResults, results: Path) -> dict[str, Any]:
    """Per cohort: the manifest's summary, its rejection reasons plotted, the QC gallery."""
    qc: dict[str, Any] = {}
    for cohort, manifest in run.manifests.items():
        s = summarise(manifest)
        qc[cohort] = {
            "summary": s,
            "figure": plots.qc_reasons(s["by_reason"], cohort),
            "gallery": qc_gallery(results, cohort),
        }
    return qc


def review_sections(
    run: RunResults, results: Path, config: dict, cases: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per cohort, from its best model's predictions: the label-review cases and the
    comparison with chronological age (where the manifest has it)."""
    review: dict[str, dict[str, Any]] = {}
    chrono: dict[str, Any] = {}
    for (exp, cohort), frame in sorted(run.predictions.items()):
        best = min(
            (m["label"]["all"].get("mae", float("inf")), x)
            for (x, c), m in run.metrics.items()
            if c == cohort
        )[1]
        if exp == best and cohort not in review:
            review[cohort] = {
                "experiment": exp,
                "cases": label_review(results, cohort, frame, cases),
                "earlier": earlier_corrections(config.get("cohorts", {}).get(cohort, {})),
            }
            manifest = run.manifests.get(cohort)
            if manifest is not None and (c := chrono_comparison(frame, manifest)):
                chrono[cohort] = {"experiment": exp, **c}
    return review, chrono


def step_table(run: RunResults, requested_mb: dict[str, int]) -> list[dict[str, Any]]:
    """Per step: jobs, total and longest seconds, peak RSS, and the memory it asked for."""
    if not len(run.benchmarks):
        return []
    steps = (
        run.benchmarks.groupby("step")
        .agg(
            jobs=("seconds", "size"),
            total_s=("seconds", "sum"),
            max_s=("seconds", "max"),
            max_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
        .to_dict("records")
    )
    for row in steps:
        row["requested_mb"] = requested_mb.get(row["step"])
    return steps


def build_report(
    results: str | os.PathLike[str],
    benchmarks: str | os.PathLike[str],
    config_json: str,
    out: str | os.PathLike[str],
    run_info: str = "{}",
    executor: str = "",
) -> None:
    """Render the report from the output folders.

    ``config_json`` is the run's resolved config (a JSON file); ``run_info``
    (JSON) says what memory each step asked for; where it ran is found here.
    """
    config = load_json(config_json)
    run = collect(config, str(results), str(benchmarks))
    results = Path(results)
    info = {**where_planned(config.get("cluster", {}), executor), **json.loads(run_info)}
    settings = {**section_defaults("report"), **config.get("report", {})}
    qc = qc_sections(run, results)
    review, chrono = review_sections(run, results, config, settings["review_cases"])
    experiments = experiment_table(run)
    cohorts = sorted({c for _, c in run.metrics} | set(run.manifests))
    steps = step_table(run, info.get("mem_mb", {}))
    memory = memory_plans(run.calibration, info.get("node"))
    env = Environment(
        loader=PackageLoader("boneage", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    html = env.get_template("report.html").render(
        title=settings["title"],
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        sections=cohort_sections(run, results),
        qc=qc,
        reasons=REASONS,
        train=run.train,
        experiments=experiments,
        cohorts=cohorts,
        review=review,
        review_cases=settings["review_cases"],
        review_subsets=sorted({c["subset"] for r in review.values() for c in r["cases"]} - {""}),
        correction_columns=CORRECTION_COLUMNS,
        trained_on=config.get("train_cohorts", []),
        curves=plots.training_curves(run.histories) if run.histories else None,
        within=WITHIN_MONTHS,
        label_statuses=ALL_STATUSES,
        steps=steps,
        versions=package_versions(),
        commit=git_commit(),
        config=json.dumps(public_config(config), indent=2),
        host=platform.node(),
        info=info,
        memory=memory,
        chrono=chrono,
        cards=model_cards(run, results, config.get("train_cohorts", [])),
        provenance=provenance(run, config.get("aggregate", {}).get("ensembles", {})),
        input_parts=INPUT_PARTS,
        short=short,
        bands=BANDS,
    )
    write_text(out, html)
