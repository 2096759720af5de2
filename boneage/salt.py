"""The site's pseudonym secret (salt): read where it is kept, never written anywhere.

A DICOM cohort names where its salt is kept, never the salt itself::

    salt_env: BONEAGE_SALT           # an environment variable of the site's jobs, or
    salt_file: /secure/boneage.salt  # a file outside the run folder (first line)

Pseudonyms are HMAC-SHA-256 of a value keyed by the salt: without the salt,
nobody can test a guessed AccessionNumber or PatientID against them. Results,
logs and Snakemake's records hold at most :func:`fingerprint`, which tells
two salts apart and reveals nothing of either.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any


class SaltError(ValueError):
    """The salt a cohort names cannot be read, or is kept where it would travel."""


def read_salt(spec: dict[str, Any], name: str = "cohort") -> str:
    """The salt a cohort names (``salt_env`` or ``salt_file``); "" where it names none."""
    if spec.get("salt_env"):
        var = str(spec["salt_env"])
        salt = os.environ.get(var, "").strip()
        if not salt:
            raise SaltError(
                f"cohorts.{name}.salt_env: the environment variable {var} is not set (or empty) "
                f"in this shell; export it before snakemake (jobs inherit it)"
            )
        return salt
    if spec.get("salt_file"):
        path = Path(str(spec["salt_file"])).expanduser()
        if not path.is_file():
            raise SaltError(f"cohorts.{name}.salt_file: {path} is not a readable file")
        run_folder = Path.cwd().resolve()
        if path.resolve().is_relative_to(run_folder):
            raise SaltError(
                f"cohorts.{name}.salt_file: {path} is inside the run folder {run_folder}, "
                "which is handed on with its results; keep the salt outside it"
            )
        lines = path.read_text().splitlines()
        salt = lines[0].strip() if lines else ""
        if not salt:
            raise SaltError(f"cohorts.{name}.salt_file: {path} is empty")
        return salt
    return ""


def pseudonym(value: str, salt: str, prefix: str = "S") -> str:
    """A stable pseudonym of ``value``: ``prefix`` and 16 hex digits of HMAC-SHA-256(salt)."""
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:16]


def fingerprint(salt: str) -> str:
    """8 hex digits that tell two salts apart (a changed salt reruns the cohort), "" for none."""
    if not salt:
        return ""
    return hmac.new(salt.encode(), b"boneage salt fingerprint", hashlib.sha256).hexdigest()[:8]
