"""A model card per experiment: what it learned from, how it scored, what it was not tested on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from boneage.atomic import read_tsv
from boneage.metrics import AGE_BANDS, band_of
from boneage.report.collect import RunResults

#: Fewer held-out images than this in a sex or age band: too few to say how it does there.
MIN_TESTED = 20
INTENDED_USE = (
    "Research and quality work: estimating skeletal (bone) age in months from a "
    "posteroanterior radiograph of a child's hand, as a second reading beside a "
    "radiologist's, and for cohort-scale studies. Not a medical device; not for a "
    "diagnosis on its own. Outputs are only as good as the labels it was trained on."
)
BANDS = [f"{lo}-{hi} y" for lo, hi in AGE_BANDS]


def training_data(results: Path, run: RunResults, cohorts: list[str]) -> dict[str, Any]:
    """Counts of the training cohorts: split subsets, and train+val images by sex and age band."""
    subsets: dict[str, int] = {}
    by_sex: dict[str, int] = {}
    by_band: dict[str, int] = dict.fromkeys(BANDS, 0)
    for cohort in cohorts:
        split_path = results / "cohorts" / cohort / "split.tsv"
        manifest = run.manifests.get(cohort)
        if not split_path.exists() or manifest is None:
            continue
        split = read_tsv(split_path)
        for name, n in split["subset"].value_counts().items():
            subsets[str(name)] = subsets.get(str(name), 0) + int(n)
        if not {"sex", "boneage"} <= set(manifest.columns):
            continue
        rows = manifest.assign(id=manifest["id"].astype(str)).merge(
            split.assign(id=split["id"].astype(str))[["id", "subset"]], on="id"
        )
        learned = rows[rows["subset"].isin(["train", "val"])]
        for sex, n in learned["sex"].value_counts().items():
            by_sex[str(sex)] = by_sex.get(str(sex), 0) + int(n)
        for band, n in pd.Series(band_of(learned["boneage"].to_numpy())).value_counts().items():
            if band:
                by_band[band] += int(n)
    return {"cohorts": cohorts, "subsets": subsets, "by_sex": by_sex, "by_band": by_band}


def held_out(run: RunResults, experiment: str) -> list[dict[str, Any]]:
    """Held-out scores per cohort: all, by sex and by age band (n and MAE)."""
    rows = []
    for (exp, cohort), m in sorted(run.metrics.items()):
        if exp != experiment:
            continue
        label = m["label"]
        rows.append(
            {
                "cohort": cohort,
                "held_out": m["held_out"],
                "all": label["all"],
                "by_sex": label.get("by_sex", {}),
                "by_band": label.get("by_band", {}),
            }
        )
    return rows


def not_tested(scores: list[dict[str, Any]]) -> list[str]:
    """Sexes and age bands with fewer than :data:`MIN_TESTED` held-out images, and fixed limits."""
    n_sex: dict[str, int] = {"F": 0, "M": 0}
    n_band = dict.fromkeys(BANDS, 0)
    for s in scores:
        for sex, sc in s["by_sex"].items():
            n_sex[sex] = n_sex.get(sex, 0) + sc.get("n", 0)
        for band, sc in s["by_band"].items():
            n_band[band] = n_band.get(band, 0) + sc.get("n", 0)
    gaps = [
        f"{'girls' if sex == 'F' else 'boys'}: {n} held-out images"
        for sex, n in n_sex.items()
        if n < MIN_TESTED
    ]
    gaps += [f"ages {band}: {n} held-out images" for band, n in n_band.items() if n < MIN_TESTED]
    return gaps + [
        "cohorts, scanners and hospitals outside this run",
        "films that are not a hand (QC rejects them before the model sees them)",
        "ages outside 0-19 years, and conditions that change bone shape",
    ]


def model_cards(run: RunResults, results: Path, train_cohorts: list[str]) -> list[dict[str, Any]]:
    """One card per trained experiment (ensembles are described by their members' cards)."""
    data = training_data(results, run, train_cohorts)
    cards = []
    for name, summary in sorted(run.train.items()):
        scores = held_out(run, name)
        cards.append(
            {
                "name": name,
                "settings": summary.get("experiment", {}),
                "training": data,
                "epochs": summary.get("epochs_run"),
                "ranks": summary.get("world_size"),
                "scores": scores,
                "not_tested": not_tested(scores),
                "intended_use": INTENDED_USE,
                "weights": {
                    "name": summary.get("experiment", {}).get("weights", "random"),
                    "digest": summary.get("inputs", {}).get("weights", "random"),
                },
            }
        )
    return cards
