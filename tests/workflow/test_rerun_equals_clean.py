"""A rerun after a change equals a clean run of the changed config, output for output.

One base run of a two-cohort workflow (a synthetic cohort and an RSNA-layout
folder inside the run folder), then for each kind of change a user makes: a
copy of the base run (mtimes and Snakemake's records kept) gets the change
and reruns incrementally, and a fresh folder runs the changed config from
scratch. Every file under ``results/`` and ``private/`` must be the same in both (bytes, or
for files that hold timings or zip dates: the same weights, arrays, numbers),
and exactly the rules worked out below must have rerun.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run_folder, shared_build

from boneage.workflow_run import snakemake, tail

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

BASE = {
    "cohorts": {
        "syn": {"source": "synthetic", "n": 40, "seed": 3, "nonhand_share": 0.1},
        "hosp": {"source": "rsna", "csv": "data/hosp/labels.csv", "images": "data/hosp/images"},
    },
    "train_cohorts": ["syn", "hosp"],
    "image_size": 32,
    "shards": {"format": "zarr", "size": 32},
    "split": {"val": 0.2, "test": 0.3},
    "experiments": {"quick": {"epochs": 2, "batch_size": 8}},
}
#: Timings and measurements of the machine, and when files were written (a film's
#: ``stamp``, size:mtime, and the shard digests made from it: the synthetic films are
#: rendered anew in each run), not results of the data: left out of comparisons.
VOLATILE = {
    "rows.tsv": {"stamp"},
    "manifest.tsv": {"stamp"},
    "train.json": {"train_seconds"},
    "history.tsv": {"seconds", "images_per_s"},
    "footprint.json": {"train_peak_mb"},
    "calibration.json": {"peak_rss_mb", "wall_s", "images_per_s", "estimate_ratio"},
}
#: Steps that run a model once the model changes, for every cohort.
MODEL_STEPS = {"train_model", "calibrate", "predict", "aggregate", "saliency", "report"}


def _ran(proc) -> set[str]:
    """The rules Snakemake ran (from its job announcements), less the target rule ``all``."""
    return set(
        re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", proc.stdout + proc.stderr, re.M)
    ) - {"all"}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """The base run, in ``<root>/base0`` (built once for all xdist workers); each change kind
    runs beside it in folders of the same name length (the manifest holds absolute paths:
    equal lengths, equal byte offsets)."""
    from boneage.synth.cohort import make_cohort

    work = run_folder(tmp_path_factory, "matrix") / "base0"
    with shared_build(work) as todo:
        if todo:
            make_cohort(work / "data/hosp", 24, seed=5, nonhand_share=0.1)
            (work / "config.yaml").write_text(yaml.safe_dump(BASE))
            proc = snakemake(work)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def _corrections(work: Path, config: dict) -> None:
    ids = pd.read_csv(work / "data/hosp/labels.csv", dtype=str)["id"].tolist()
    (work / "data/corrections.csv").write_text(
        "id,action,boneage_months,reviewer,date,note\n"
        f"{ids[1]},update,150,Dr. A,2026-05-01,\n"
        f"{ids[2]},delete,,Dr. A,2026-05-01,\n"
        f"{ids[3]},problematic,,Dr. A,2026-05-01,blurred\n"
    )
    config["cohorts"]["hosp"]["corrections"] = "data/corrections.csv"


def _image_replaced(work: Path, config: dict) -> None:
    """A re-exported training film, rewritten in place: another hand's pixels, same name."""
    split = pd.read_csv(work / "results/cohorts/hosp/split.tsv", sep="\t", dtype=str)
    first, other = split.loc[split["subset"] == "train", "id"].iloc[:2]
    images = work / "data/hosp/images"
    (images / f"{first}.png").write_bytes((images / f"{other}.png").read_bytes())


def _set(path: str, value) -> Callable[[Path, dict], None]:
    def change(work: Path, config: dict) -> None:
        *parents, key = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        node[key] = value

    return change


#: change kind -> (the change, the rules that must rerun, and no others). One plain training
#: setting (the learning rate) stands for all of them: epochs, loss, optimizer and the others
#: reach the run the same way (the experiment's resolved settings and the run key).
CHANGES = {
    "corrections": (
        _corrections,
        {"resolved_config", "manifest", "shard", "index", "split"} | MODEL_STEPS,
    ),
    "rows_added": (
        _set("cohorts.syn.n", 52),
        {"resolved_config", "synth", "manifest", "shard", "index", "split"} | MODEL_STEPS,
    ),
    "scored_cohort_added": (
        _set("cohorts.extra", {"source": "synthetic", "n": 16, "seed": 9}),
        {"resolved_config", "synth", "manifest", "shard", "index", "split", "predict"}
        | {"aggregate", "saliency", "report"},
    ),
    "image_replaced": (
        _image_replaced,
        {"resolved_config", "manifest", "shard", "index", "split"} | MODEL_STEPS,
    ),
    "learning_rate": (
        _set("experiments.quick.learning_rate", 0.001),
        {"resolved_config", "model_footprint"} | MODEL_STEPS,
    ),
    # another network: two sex-specific towers (a keras.applications backbone takes the same
    # path, the experiment's settings, at twice this test's cost: tests/workflow/test_recipes.py)
    "architecture": (
        _set("experiments.quick.sex_mode", "separate"),
        {"resolved_config", "model_footprint"} | MODEL_STEPS,
    ),
    "image_size": (
        _set("image_size", 40),
        {"resolved_config", "shard", "index", "split", "model_footprint"} | MODEL_STEPS,
    ),
    "train_cohort_removed": (
        _set("train_cohorts", ["syn"]),
        {"resolved_config"} | MODEL_STEPS,
    ),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_rerun_after_a_change_equals_a_clean_run(base_run, kind):
    change, expected = CHANGES[kind]
    number = list(CHANGES).index(kind)
    inc, clean = (base_run.parent / f"{name}{number}" for name in ("inc_", "cln_"))
    shutil.copytree(base_run, inc, symlinks=True)
    config = yaml.safe_load((inc / "config.yaml").read_text())
    change(inc, config)
    (inc / "config.yaml").write_text(yaml.safe_dump(config))
    clean.mkdir()
    shutil.copytree(inc / "data", clean / "data")  # the changed sources, nothing else
    (clean / "config.yaml").write_text((inc / "config.yaml").read_text())
    with ThreadPoolExecutor(2) as pool:  # side by side: two folders share nothing
        rerun, fresh = pool.map(snakemake, (inc, clean))
    assert rerun.returncode == 0, tail(rerun)
    assert fresh.returncode == 0, tail(fresh)

    assert _ran(rerun) == expected, f"reran {sorted(_ran(rerun))}"
    for folder in ("results", "private"):
        assert_same_results(inc / folder, clean / folder, moved_from=base_run)
    before = json.loads((base_run / "results/models/quick/train.json").read_text())
    after = json.loads((inc / "results/models/quick/train.json").read_text())
    if "train_model" in expected:  # trained anew on the new inputs, not resumed
        assert after["run_key"] != before["run_key"]
        assert "resuming" not in (inc / "logs/train/quick.log").read_text()
    else:
        assert after == before


def assert_same_results(a: Path, b: Path, moved_from: Path) -> None:
    """Every file under two results folders is the same, up to the machine's timings.

    Text that names a run's own folder (the manifest's absolute paths) is
    compared with that folder's path replaced by ``{run}``; ``a``'s run is a
    copy of ``moved_from``, whose paths its unchanged tables still hold.
    """
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        x, y = a / rel, b / rel
        if x.read_bytes() == y.read_bytes():
            continue
        assert _comparable(x, a.parent, moved_from) == _comparable(y, b.parent), f"{rel} differs"


def _comparable(path: Path, *runs: Path):
    """What of a file must equal the clean run's, where its bytes may not."""
    from boneage.models import load_model, weights_digest

    drop = VOLATILE.get(path.name, set())
    if path.suffix == ".keras":  # a zip with the date it was saved
        return weights_digest(load_model(path))
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k].tobytes() for k in z.files}
    if path.suffix in (".json", ".tsv", ".html"):
        text = path.read_text()
        for run in runs:
            text = text.replace(str(run.resolve()), "{run}")
    if path.name == "shards.json":  # shard digests count the films' mtimes
        plan = json.loads(text)
        return {**plan, "shards": [{**s, "digest": None} for s in plan["shards"]]}
    if path.suffix == ".json":
        return {k: v for k, v in json.loads(text).items() if k not in drop}
    if path.suffix == ".tsv":
        table = pd.read_csv(io.StringIO(text), sep="\t", dtype=str)
        return table.drop(columns=list(drop), errors="ignore").to_csv(index=False)
    if path.suffix == ".html":
        return report_without_timings(text)
    return path.read_bytes()


def report_without_timings(html: str) -> str:
    """The report less what it marks ``volatile`` (timings and measurements of the run)."""
    html = re.sub(r'<table id="\w+" class="volatile">.*?</table>', "", html, flags=re.S)
    html = re.sub(r'<(p|td|span) class="[^"]*volatile[^"]*">.*?</\1>', "", html, flags=re.S)
    return html
