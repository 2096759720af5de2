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


@pytest.mark.parametrize("mutate,where", [
    (lambda c: c["experiments"]["small_cnn"].update(epochs=0), "experiments.small_cnn.epochs"),
    (lambda c: c["shards"].update(format="parquet"), "shards.format"),
    (lambda c: c.update(imagesize=128), "imagesize"),
    (lambda c: c.update(train_cohorts=["nope"]), "train_cohorts"),
    (lambda c: c["cohorts"].update(bad={"source": "rsna", "csv": "x.csv"}), "cohorts.bad"),
])
def test_errors_name_the_bad_key(mutate, where):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    bad = copy.deepcopy(config)
    mutate(bad)
    with pytest.raises(ConfigError) as info:
        validate(bad)
    assert where in str(info.value)
