"""The recipes in recipes/ and ImageNet weights through the whole DAG, offline.

A Keras cache (KERAS_HOME) holds the exact files Keras would download, written
from randomly initialised networks: no test reaches the network.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from harness import TINY, cached_imagenet_file

from boneage.config import validate
from boneage.experiment import Experiment
from boneage.provenance import sha256_file
from boneage.train import run_training
from boneage.workflow_run import REPO, snakemake, tail

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
#: The smallest input each backbone takes, for one quick step on the tiny cohort.
SMALL = {"inceptionv3": 75, "efficientnetb0": 32}


@pytest.fixture(scope="module")
def keras_home(tmp_path_factory):
    """A Keras cache with the ImageNet files the recipes ask for."""
    home = tmp_path_factory.mktemp("keras")
    for backbone in SMALL:
        cached_imagenet_file(home, backbone)
    return home


def test_there_are_recipes():
    assert {p.name for p in RECIPES} >= {"rsna2017-16bit.yaml", "deeplasia-style.yaml"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_a_recipe_plans_and_each_experiment_trains_a_step(
    recipe, keras_home, monkeypatch, tmp_path, tiny_shards
):
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    config = yaml.safe_load(recipe.read_text())
    validate(json.loads(json.dumps(config)))  # as written (its cohorts need not exist to plan)
    assert "known" in recipe.read_text().lower() and "guessed" in recipe.read_text().lower()
    # The plan, with the tiny cohort in place of the RSNA films.
    work = tmp_path / "run"
    work.mkdir()
    planned = {**config, "cohorts": TINY["cohorts"], "train_cohorts": ["tiny"], "image_size": 75}
    (work / "config.yaml").write_text(yaml.safe_dump(planned))
    dry = snakemake(work, "-n")
    assert dry.returncode == 0, tail(dry)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout + dry.stderr, re.M))
    assert int(jobs["train_model"]) == len(config["experiments"])
    for name, exp in config["experiments"].items():
        settings = {**exp, "image_size": SMALL[exp["backbone"]], "batch_size": 4, "epochs": 1}
        paths, split = tiny_shards
        summary = run_training(
            Experiment.from_dict(name, settings), paths, split, str(tmp_path / name), threads=2
        )
        history = pd.read_csv(tmp_path / name / "history.tsv", sep="\t")
        assert len(history) == 1 and history["loss"].notna().all()
        cached = keras_home / "models" / _file(exp["backbone"])
        assert summary["inputs"]["weights"] == sha256_file(cached)


def _file(backbone: str) -> str:
    from boneage.weights import IMAGENET

    return IMAGENET[backbone].name


def test_imagenet_weights_run_the_whole_dag_offline(keras_home, monkeypatch, tmp_path):
    """efficientnetb0 from the cached ImageNet file: the report names the file's SHA-256,
    and a new file in the cache retrains (it is a declared input)."""
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    exp = {"backbone": "efficientnetb0", "weights": "imagenet", "epochs": 1, "batch_size": 8}
    config = {**TINY, "experiments": {"pretrained": {**exp, "freeze_epochs": 1}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, tail(proc)
    cached = keras_home / "models" / _file("efficientnetb0")
    summary = json.loads((tmp_path / "results/models/pretrained/train.json").read_text())
    assert summary["inputs"]["weights"] == sha256_file(cached)
    page = (tmp_path / "results/report.html").read_text()
    assert f"<code>{sha256_file(cached)}</code>" in page
    cached.touch()  # a re-fetched file
    again = snakemake(tmp_path, "-n")
    assert again.returncode == 0 and re.search(r"^train_model\s+1$", again.stdout, re.M), tail(
        again
    )
