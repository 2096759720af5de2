"""Print the held-out accuracy of every (experiment, cohort) against the baseline."""

from __future__ import annotations

import json
import os
from pathlib import Path


def summary_rows(results: str | os.PathLike[str]) -> list[dict[str, object]]:
    """One row per metrics file: MAE vs label and true age, baseline MAE, ratio, model digest.

    ``stale`` is True where the metrics came from another model than the
    experiment's current ``train.json`` names (None for ensembles).
    """
    rows = []
    for p in sorted(Path(results).glob("metrics/*/*.json")):
        m = json.loads(p.read_text())
        summary = Path(results) / "models" / p.parent.name / "train.json"
        current = json.loads(summary.read_text()).get("model_digest") if summary.exists() else None
        mae = m["label"]["all"].get("mae", float("nan"))
        base = m["baseline"]["label"].get("mae", float("nan"))
        rows.append(
            {
                "experiment": p.parent.name,
                "cohort": p.stem,
                "n": m["label"]["all"]["n"],
                "held_out": m["held_out"],
                "mae": mae,
                "baseline": base,
                "mae_true": m.get("true", {}).get("all", {}).get("mae", float("nan")),
                "ratio": mae / base if base else float("nan"),
                "model_digest": m.get("model_digest"),
                "stale": None if current is None else m.get("model_digest") != current,
            }
        )
    return rows


def print_summary(results: str | os.PathLike[str]) -> None:
    """Print the summary table (and where the report is)."""
    rows = summary_rows(results)
    if not rows:
        print(f"no metrics under {results}/metrics: has the workflow run?")
        return
    print(
        f"{'experiment':<14}{'cohort':<14}{'held-out n':>11}{'MAE (mo)':>10}"
        f"{'vs true':>9}{'baseline':>10}{'ratio':>7}  model"
    )
    for r in rows:
        flag = "  STALE: not the current model" if r["stale"] else ""
        print(
            f"{r['experiment']:<14}{r['cohort']:<14}{r['n']:>11}{r['mae']:>10.2f}"
            f"{r['mae_true']:>9.2f}{r['baseline']:>10.2f}{r['ratio']:>7.2f}"
            f"  {r['model_digest'] or '-'}{flag}"
        )
    report = Path(results) / "report.html"
    if report.exists():
        print(f"report: {report.resolve()}")
