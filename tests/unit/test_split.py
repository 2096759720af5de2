"""Deterministic split by patient."""

from __future__ import annotations

import pandas as pd

from boneage.split import make_split, subset_of


def test_deterministic_and_grouped_by_patient():
    manifest = pd.DataFrame(
        {
            "id": [str(i) for i in range(2000)],
            "patient": [f"p{i // 2}" for i in range(2000)],
            "status": ["accepted"] * 1999 + ["rejected"],
        }
    )
    a = make_split(manifest, seed=7, val=0.1, test=0.2)
    b = make_split(manifest.sample(frac=1.0, random_state=1), seed=7, val=0.1, test=0.2)
    assert len(a) == 1999
    assert a.set_index("id")["subset"].equals(b.set_index("id")["subset"].loc[a["id"]])
    assert (a.groupby("patient")["subset"].nunique() == 1).all()
    shares = a["subset"].value_counts(normalize=True)
    assert abs(shares["test"] - 0.2) < 0.04 and abs(shares["val"] - 0.1) < 0.03
    c = make_split(manifest, seed=8, val=0.1, test=0.2)
    assert not a["subset"].equals(c["subset"])


def test_subset_is_the_same_in_another_process():
    """A split job on another node must put every patient where this one does (no hash salt)."""
    import os
    import subprocess
    import sys

    patients = [f"patient-{i}" for i in range(300)]
    here = [subset_of(p, 42, 0.1, 0.2) for p in patients]
    code = (
        "import sys; from boneage.split import subset_of; "
        "print(' '.join(subset_of(p, 42, 0.1, 0.2) for p in sys.argv[1:]))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, *patients],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout.split()
    assert there == here and {"train", "val", "test"} <= set(here)


def test_subset_edges():
    assert subset_of("x", 1, 0.0, 1.0) == "test"
    assert subset_of("x", 1, 0.0, 0.0) == "train"
