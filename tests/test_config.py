"""Config validation: defaults filled, bad keys named."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from boneage.config import ConfigError, load, validate


def test_default_config_is_valid_and_gets_defaults():
    config = load(REPO / "config.yaml")
    assert config["shards"]["format"] == "zarr"
    assert config["cohorts"]["synthetic"]["nonhand_share"] == 0.03
    assert config["experiments"]["small_cnn"]["warmup_epochs"] == 1


@pytest.mark.parametrize(
    "mutate,where",
    [
        (lambda c: c["experiments"]["small_cnn"].update(epochs=0), "experiments.small_cnn.epochs"),
        (lambda c: c["shards"].update(format="parquet"), "shards.format"),
        (lambda c: c.update(imagesize=128), "imagesize"),
        (lambda c: c.update(train_cohorts=["nope"]), "train_cohorts"),
        (lambda c: c["cohorts"].update(bad={"source": "rsna", "csv": "x.csv"}), "cohorts.bad"),
    ],
)
def test_errors_name_the_bad_key(mutate, where):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    bad = copy.deepcopy(config)
    mutate(bad)
    with pytest.raises(ConfigError) as info:
        validate(bad)
    assert where in str(info.value)


@pytest.mark.parametrize("id_field", ["AccessionNumber", "PatientID"])
def test_unsalted_enumerable_pseudonyms_stop_at_start(id_field):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["cohorts"]["pacs"] = {"source": "dicom", "folder": "/x", "id_field": id_field}
    with pytest.raises(ConfigError, match=r"cohorts\.pacs\.salt"):
        validate(copy.deepcopy(config))
    config["cohorts"]["pacs"]["salt"] = "a site secret"
    validate(copy.deepcopy(config))  # with a salt, or with a UID as id, it runs
    config["cohorts"]["pacs"].update(salt="", id_field="StudyInstanceUID")
    validate(config)


def test_report_config_hides_salts_and_dicom_folders():
    from boneage.config import public_config

    config = {
        "cohorts": {
            "pacs": {"source": "dicom", "folder": "/pacs/DOE_JANE", "salt": "s3cr3t-value"},
            "rsna": {"source": "rsna", "csv": "/rsna/a.csv", "images": "/rsna"},
        }
    }
    shown = str(public_config(config))
    assert "s3cr3t" not in shown and "DOE_JANE" not in shown and "/rsna/a.csv" in shown
    assert config["cohorts"]["pacs"]["salt"] == "s3cr3t-value"  # the run's own config is untouched


@pytest.mark.slow
def test_installed_wheel_validates_a_config(tmp_path):
    """The schema is package data: a wheel (no workflow/ folder) validates a config."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next(tmp_path.glob("boneage-*.whl"))
    assert "boneage/schemas/config.schema.yaml" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys, yaml; from boneage.config import load, SCHEMA; "
        "assert 'site' in str(SCHEMA), SCHEMA; load(sys.argv[1]); print('valid')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "config.yaml")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "valid", out.stderr[-2000:]


def test_the_schema_is_the_only_source_of_defaults():
    """Experiment, the CLI and the synthetic cohort take the defaults a config.yaml gets."""
    import dataclasses
    import inspect

    from boneage.cli import build_parser
    from boneage.synth.cohort import sample_studies
    from boneage.train import Experiment

    cohorts = {"c": {"source": "synthetic", "n": 10}}
    cfg = validate({"cohorts": cohorts, "train_cohorts": ["c"], "experiments": {"e": {}}})
    exp = dataclasses.asdict(Experiment("e"))
    assert {k: exp[k] for k in cfg["experiments"]["e"]} == cfg["experiments"]["e"]
    assert exp["image_size"] == cfg["image_size"]
    assert exp["train_censored"] == cfg["labels"]["train_censored"]

    def defaults(*argv: str) -> dict:
        sub = build_parser()._subparsers._group_actions[0].choices[argv[0]]
        return {a.dest: a.default for a in sub._actions}

    synth = cfg["cohorts"]["c"]
    assert {k: defaults("synth")[k] for k in ("seed", "nonhand_share", "inverted_share")} == {
        k: synth[k] for k in ("seed", "nonhand_share", "inverted_share")
    }
    assert {k: defaults("split")[k] for k in ("seed", "val", "test")} == cfg["split"]
    assert defaults("predict")["batch_size"] == cfg["predict"]["batch_size"]
    assert defaults("launch")["launcher"] == cfg["cluster"]["mpi"]
    assert defaults("launch")["cpu_ranks"] == cfg["distributed"]["cpu_ranks"]
    params = inspect.signature(sample_studies).parameters
    assert params["nonhand_share"].default == synth["nonhand_share"]


def test_profile_config_strings_become_numbers():
    """A profile's `config: ["distributed={ranks: 8}"]` arrives as {'ranks': '8'}."""
    cfg = {
        "cohorts": {"c": {"source": "synthetic", "n": 10}},
        "train_cohorts": ["c"],
        "experiments": {"e": {"epochs": "3"}},
        "distributed": {"ranks": "8"},
        "predict": {"calibrate": "false"},
        "cluster": {"node_mem": "64G", "memory_margin": "0.3"},
    }
    out = validate(cfg)
    assert out["distributed"]["ranks"] == 8 and out["experiments"]["e"]["epochs"] == 3
    assert out["predict"]["calibrate"] is False
    assert out["cluster"] == {**out["cluster"], "node_mem": "64G", "memory_margin": 0.3}
    with pytest.raises(ConfigError, match="distributed.ranks"):
        validate({**cfg, "distributed": {"ranks": "eight"}})
