"""Config validation: defaults filled, bad keys named."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO

from boneage.config import ConfigError, load, section_defaults, validate


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
def test_unsalted_enumerable_pseudonyms_stop_at_start(id_field, monkeypatch, tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["cohorts"]["pacs"] = {"source": "dicom", "folder": "/x", "id_field": id_field}
    pacs = config["cohorts"]["pacs"]
    with pytest.raises(ConfigError, match=r"cohorts\.pacs\.salt_env: pseudonyms of"):
        validate(copy.deepcopy(config))
    pacs["salt_env"] = "BONEAGE_TEST_SALT"  # named, but not set in this shell
    monkeypatch.delenv("BONEAGE_TEST_SALT", raising=False)
    with pytest.raises(ConfigError, match=r"BONEAGE_TEST_SALT is not set"):
        validate(copy.deepcopy(config))
    monkeypatch.setenv("BONEAGE_TEST_SALT", "a site secret")
    validate(copy.deepcopy(config))  # with a salt, or with a UID as id, it runs
    del pacs["salt_env"]
    pacs["id_field"] = "StudyInstanceUID"
    validate(copy.deepcopy(config))
    run, secure = tmp_path / "run", tmp_path / "secure"  # a salt file: outside the run folder
    run.mkdir(), secure.mkdir()
    monkeypatch.chdir(run)
    for folder in (run, secure):
        (folder / "salt").write_text("a site secret\n")
    pacs["salt_file"] = str(run / "salt")
    with pytest.raises(ConfigError, match=r"inside the run folder"):
        validate(copy.deepcopy(config))
    pacs["salt_file"] = str(secure / "salt")
    validate(copy.deepcopy(config))
    (secure / "salt").write_text("\n")
    with pytest.raises(ConfigError, match=r"is empty"):  # ... and not empty
        validate(copy.deepcopy(config))


def test_a_salt_written_in_the_config_is_refused_with_what_to_do_instead():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["cohorts"]["pacs"] = {"source": "dicom", "folder": "/x", "salt": "s3cr3t-value"}
    with pytest.raises(ConfigError) as info:
        validate(config)
    message = str(info.value)
    assert "cohorts.pacs.salt: a salt written in the config travels" in message
    assert "salt_env: BONEAGE_SALT" in message and "salt_file" in message
    assert "s3cr3t" not in message


def test_salt_pseudonyms_are_keyed_hashes():
    """HMAC-SHA-256 (RFC 2104) of the value, keyed by the salt: checked against hmac itself."""
    import hashlib
    import hmac

    from boneage.salt import fingerprint, pseudonym

    expected = hmac.new(b"k", b"ACC-1", hashlib.sha256).hexdigest()[:16]
    assert pseudonym("ACC-1", "k") == "S" + expected
    assert pseudonym("ACC-1", "k") != pseudonym("ACC-1", "k2")
    assert pseudonym("ACC-1", "k") != "S" + hashlib.sha256(b"k:ACC-1").hexdigest()[:16]
    assert len(fingerprint("k")) == 8 and fingerprint("k") != fingerprint("k2")
    assert fingerprint("") == ""


def test_run_config_in_results_leaves_dicom_folders_out():
    from boneage.config import public_config

    config = {
        "cohorts": {
            "pacs": {"source": "dicom", "folder": "/pacs/DOE_JANE", "salt_env": "SALT"},
            "rsna": {"source": "rsna", "csv": "/rsna/a.csv", "images": "/rsna"},
        }
    }
    shown = str(public_config(config))
    assert "DOE_JANE" not in shown and "/rsna/a.csv" in shown
    assert config["cohorts"]["pacs"]["folder"] == "/pacs/DOE_JANE"  # the run's own is untouched


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
    from boneage.experiment import Experiment
    from boneage.synth.cohort import sample_studies

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
    shares = ("seed", "nonhand_share", "inverted_share", "hard_share")
    assert {k: defaults("synth")[k] for k in shares} == {k: synth[k] for k in shares}
    assert {k: defaults("split")[k] for k in ("seed", "val", "test")} == cfg["split"]
    assert defaults("predict")["batch_size"] == cfg["predict"]["batch_size"]
    assert defaults("launch")["launcher"] == cfg["cluster"]["mpi"]
    assert defaults("launch")["cpu_ranks"] == cfg["distributed"]["cpu_ranks"]
    params = inspect.signature(sample_studies).parameters
    assert params["nonhand_share"].default == synth["nonhand_share"]
    assert params["hard_share"].default == synth["hard_share"]


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


def test_no_function_repeats_a_schema_default_as_a_literal():
    """Every parameter of the package named like an experiment setting (or the memory
    margin) that has a default has the schema's: a literal copy would drift from it
    (None or "" mean "not given", not a setting)."""
    import importlib
    import inspect
    import pkgutil

    import boneage

    schema = {
        **section_defaults("experiments"),
        "margin": section_defaults("cluster")["memory_margin"],
    }
    names = ("backbone", "optimizer", "loss", "schedule", "sex_mode", "weights", "learning_rate")
    names += ("epochs", "precision", "warmup_epochs", "weight_decay", "margin")
    checked, wrong = 0, []
    for info in pkgutil.walk_packages(boneage.__path__, "boneage."):
        if info.name.endswith("__main__"):  # runs the CLI when imported
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(
            module, lambda o: inspect.isfunction(o) or inspect.isclass(o)
        ):
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            funcs = (
                [obj]
                if inspect.isfunction(obj)
                else [f for f in vars(obj).values() if inspect.isfunction(f)]
            )
            for func in funcs:
                for p in inspect.signature(func).parameters.values():
                    if p.name in names and p.default not in (inspect.Parameter.empty, None, ""):
                        checked += 1
                        if p.default != schema[p.name]:
                            wrong.append(f"{func.__qualname__}({p.name}={p.default!r})")
    assert checked >= 5  # the scan sees the package (Experiment's fields, estimate, plan_node)
    assert not wrong, f"literal defaults that differ from the schema: {wrong}"
