"""Load and validate config.yaml against the schema shipped in the package.

The schema is package data (``boneage/schemas/config.schema.yaml``; the
workflow's ``workflow/schemas/config.schema.yaml`` links to it), so an
installed wheel validates a config too.

Validation fills defaults from the schema and reports every problem with the
dotted path of the bad key (``experiments.small_cnn.epochs: 0 is less than
the minimum of 1``), so a user knows what to fix without reading a traceback.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from boneage.salt import SaltError, read_salt
from boneage.weights import weights_problem

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA.read_text())


def _defaults(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v["default"] for k, v in props.items() if "default" in v}


def schema_default(key: str) -> Any:
    """The schema's default of a top-level key of config.yaml (``image_size``)."""
    return _schema()["properties"][key]["default"]


def section_defaults(section: str) -> dict[str, Any]:
    """The schema's defaults of a section (``split``, ``predict``, ``cluster``, ...).

    For ``experiments`` (entries keyed by name), the defaults of one entry.
    These are the only defaults: the CLI, ``Experiment`` and the synthetic
    cohort read theirs from here.
    """
    node = _schema()["properties"][section]
    if "properties" not in node:  # a map of named entries
        node = node["additionalProperties"]
    return _defaults(node["properties"])


def source_defaults(source: str) -> dict[str, Any]:
    """The schema's defaults of a cohort entry with ``source: <source>``."""
    for branch in _schema()["$defs"]["cohort"]["allOf"]:
        if branch["if"]["properties"]["source"]["const"] == source:
            return _defaults(branch["then"]["properties"])
    raise KeyError(f"no cohort source {source!r} in the schema")


class ConfigError(ValueError):
    """The config does not match the schema; the message lists each bad key."""


def _with_defaults(cls):
    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = sub["default"]
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


#: DICOM id fields anyone can enumerate: an unsalted pseudonym of one is reversible.
ENUMERABLE_IDS = ("AccessionNumber", "PatientID")


def check_salt(name: str, spec: dict[str, Any]) -> str | None:
    """The problem with a DICOM cohort's pseudonym secret (salt), else None.

    A salt written in the config is refused: it would travel with every copy
    of the config and of Snakemake's records. A hash of an AccessionNumber or
    PatientID without a salt is reversed by hashing every plausible number:
    such a cohort must name one (``salt_env`` or ``salt_file``), and it must
    be readable now, before any job is queued.
    """
    if spec.get("source") != "dicom":
        return None
    if "salt" in spec:
        return (
            f"cohorts.{name}.salt: a salt written in the config travels with every copy of "
            "the config and of Snakemake's records; keep it in an environment variable "
            f"(export BONEAGE_SALT=...; cohorts.{name}.salt_env: BONEAGE_SALT) or in a file "
            f"outside the run folder (cohorts.{name}.salt_file: /secure/boneage.salt)"
        )
    if spec.get("salt_env") and spec.get("salt_file"):
        return f"cohorts.{name}: give salt_env or salt_file, not both"
    try:
        salt = read_salt(spec, name)
    except SaltError as exc:
        return str(exc)
    if (
        spec.get("pseudonymize", True)
        and spec.get("id_field", "StudyInstanceUID") in ENUMERABLE_IDS
        and not salt
    ):
        return (
            f"cohorts.{name}.salt_env: pseudonyms of {spec['id_field']} without a salt can be "
            "reversed by hashing every plausible value; name a site secret with salt_env "
            "(an environment variable) or salt_file (a file outside the run folder)"
        )
    return None


def check_determinism(exp: dict[str, Any]) -> str | None:
    """The problem with an experiment that asks for determinism it cannot have, else None."""
    if exp.get("xla") and exp.get("deterministic", True):
        return (
            "xla: true cannot train deterministically (XLA has no deterministic MaxPool "
            "gradient); set deterministic: false as well to use XLA"
        )
    return None


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as results may hold it: DICOM folder paths left out.

    A PACS export folder is often named after a patient or an accession
    number. (A salt is never in the config: only where it is kept.)
    """
    shown = dict(config)
    cohorts = {}
    for name, spec in config.get("cohorts", {}).items():
        if spec.get("source") == "dicom":
            spec = {**spec, "folder": "(DICOM folder, not shown)"}
        cohorts[name] = spec
    shown["cohorts"] = cohorts
    return shown


_SCALARS: dict[str, Any] = {
    "integer": int,
    "number": float,
    "boolean": lambda s: {"true": True, "false": False}[s.lower()],
}


def coerce_strings(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Numbers and booleans given as strings where the schema wants them, in place.

    ``snakemake --config 'distributed={ranks: 8}'`` (and a profile's
    ``config:`` list) reads nested values as strings: ``{'ranks': '8'}``.
    A string stays a string where the schema allows one.
    """
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, value in config.items():
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if not isinstance(sub, dict):
            continue
        if isinstance(value, dict):
            coerce_strings(value, sub)
            continue
        types = sub.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, str) and "string" not in types:
            for name in types:
                try:
                    config[key] = _SCALARS[name](value)
                    break
                except (KeyError, ValueError):
                    pass


def validate(
    config: dict[str, Any], schema_path: str | os.PathLike[str] = SCHEMA
) -> dict[str, Any]:
    """Validate ``config`` in place (defaults filled in) and return it."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    coerce_strings(config, schema)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  {'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
            for e in errors
        ]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    for name, members in config.get("aggregate", {}).get("ensembles", {}).items():
        unknown = [m for m in members if m not in config["experiments"]]
        if name in config["experiments"] or unknown:
            raise ConfigError(
                f"invalid configuration:\n  aggregate.ensembles.{name}: members must "
                f"be experiments and the name must not be one (unknown: {unknown})"
            )
    for name, exp in config["experiments"].items():
        if (problem := check_determinism(exp)) is not None:
            raise ConfigError(f"invalid configuration:\n  experiments.{name}: {problem}")
        if exp.get("freeze_epochs") and exp.get("weights", "random") == "random":
            raise ConfigError(
                f"invalid configuration:\n  experiments.{name}.freeze_epochs: freezing a "
                "backbone of random weights trains nothing worth keeping; set weights "
                "(imagenet or a file) or freeze_epochs: 0"
            )
        if (problem := weights_problem(name, exp)) is not None:
            raise ConfigError(f"invalid configuration:\n  {problem}")
    unsafe = [p for name, spec in config["cohorts"].items() if (p := check_salt(name, spec))]
    if unsafe:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(unsafe))
    for name in config.get("train_cohorts", []):
        if name not in config["cohorts"]:
            raise ConfigError(
                f"invalid configuration:\n  train_cohorts: {name!r} is not one of "
                f"the cohorts ({', '.join(config['cohorts'])})"
            )
    return config


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    with open(path, encoding="utf-8") as fh:
        return validate(yaml.safe_load(fh) or {})
