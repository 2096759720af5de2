"""Deterministic train/val/test split by patient.

A patient's subset depends only on a salted SHA-256 of the patient id, so
it never changes when other rows come or go, and all studies of one
patient land in the same subset (no leakage of follow-up films).
"""

from __future__ import annotations

import hashlib

import pandas as pd


def subset_of(patient: str, seed: int, val: float, test: float) -> str:
    """The subset of one patient: test below ``test``, val below ``test + val``."""
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def make_split(manifest: pd.DataFrame, seed: int, val: float, test: float) -> pd.DataFrame:
    """Split the accepted rows of a manifest; columns ``id, patient, subset, label_status``."""
    accepted = manifest[manifest["status"] == "accepted"]
    patients = accepted["patient"].astype(str)
    subsets = {p: subset_of(p, seed, val, test) for p in patients.unique()}
    return pd.DataFrame(
        {
            "id": accepted["id"].astype(str).values,
            "patient": patients.values,
            "subset": patients.map(subsets).values,
            "label_status": (
                accepted["label_status"].values if "label_status" in accepted else "exact"
            ),
        }
    )
