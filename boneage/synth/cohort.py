"""Write a synthetic cohort in the RSNA 2017 training layout.

Output folder::

    labels.csv         id,boneage,male   (RSNA training CSV; boneage in months)
    truth.csv          id,true_boneage,patient,kind,inverted,pose   (side file)
    images/<id>.png    8-bit grayscale

Labels model a radiologist's reading: the true bone age (the age the anatomy
was drawn from) plus reader noise with sd ``READER_SD`` months, then, for most
readings, snapped to the atlas's 6-month steps; clipped to 1-228 months. The
true age stays in ``truth.csv`` for evaluation. A few images are inverted
(black bone on white), a few are not hands at all (``kind`` says which), and
a few hands are hard to see (``pose``: fingers held together, or a
collimator's shadow across one side); some patients have a follow-up study,
so splits must go by patient.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from boneage.atomic import atomic_path
from boneage.config import source_defaults
from boneage.synth.render import NONHAND_KINDS, render_hand, render_nonhand

READER_SD = 6.0
SNAP_SHARE = 0.7
MAX_MONTHS = 228.0
_SYNTH = source_defaults("synthetic")  # the config schema holds the defaults


@dataclass(frozen=True)
class Study:
    """One synthetic image: what is drawn and what the label sheet says."""

    id: str
    patient: str
    male: bool
    true_boneage: float
    boneage: float
    kind: str  # "hand" or one of NONHAND_KINDS
    inverted: bool
    pose: str = "open"  # a hand's: open, together (fingers touching) or collimated


def sample_studies(
    n: int,
    seed: int,
    nonhand_share: float = _SYNTH["nonhand_share"],
    inverted_share: float = _SYNTH["inverted_share"],
    followup_share: float = 0.1,
    hard_share: float = _SYNTH["hard_share"],
) -> list[Study]:
    """Draw ``n`` studies with an RSNA-like age and sex distribution."""
    rng = np.random.default_rng([seed, 0])
    poses = np.random.default_rng([seed, 2]).random(n)  # its own stream: hands stay as drawn
    studies: list[Study] = []
    for i in range(n):
        if studies and rng.random() < followup_share:
            prev = studies[int(rng.integers(len(studies)))]
            patient, male = prev.patient, prev.male
            true = min(prev.true_boneage + rng.uniform(6, 30), MAX_MONTHS)
        else:
            patient, male = f"P{seed:03d}{i:06d}", bool(rng.random() < 0.54)
            true = rng.normal(135, 36) if rng.random() < 0.85 else rng.uniform(1, 110)
            true = float(np.clip(true, 1, MAX_MONTHS))
        reading = true + rng.normal(0, READER_SD)
        reading = 6 * round(reading / 6) if rng.random() < SNAP_SHARE else round(reading)
        kind = "hand"
        if rng.random() < nonhand_share:
            kind = NONHAND_KINDS[int(rng.integers(len(NONHAND_KINDS)))]
        studies.append(
            Study(
                str(1000 + i),
                patient,
                male,
                round(true, 2),
                float(np.clip(reading, 1, MAX_MONTHS)),
                kind,
                bool(rng.random() < inverted_share),
                _pose(poses[i], hard_share) if kind == "hand" else "open",
            )
        )
    return studies


def _pose(u: float, hard_share: float) -> str:
    """A hand's pose from a uniform draw: half the hard ones together, half collimated."""
    return "open" if u >= hard_share else "together" if u < hard_share / 2 else "collimated"


def render_study(study: Study, seed: int) -> np.ndarray:
    """The pixels of one study (uint8, shape (rows, cols)); deterministic by seed and id."""
    rng = np.random.default_rng([seed, 1, int(study.id)])
    if study.kind == "hand":
        if study.pose == "together":  # touching, as the QC bench draws them
            img = render_hand(study.true_boneage, study.male, rng, spread=rng.uniform(-0.4, 0.0))
        else:
            img = render_hand(
                study.true_boneage, study.male, rng, collimated=study.pose == "collimated"
            )
    else:
        img = render_nonhand(study.kind, rng)
    return 255 - img if study.inverted else img


def _write_one(args: tuple[Study, int, str]) -> None:
    study, seed, folder = args
    path = Path(folder) / f"{study.id}.png"
    if path.exists():
        return
    with atomic_path(path) as tmp:
        Image.fromarray(render_study(study, seed)).save(tmp, format="PNG", compress_level=3)


def make_cohort(
    out_dir: str | os.PathLike[str], n: int, seed: int, workers: int = 1, **shares: float
) -> pd.DataFrame:
    """Render ``n`` studies into ``out_dir`` (RSNA layout) and return the truth table.

    Re-running with the same arguments reuses images already written.
    """
    out = Path(out_dir)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    studies = sample_studies(n, seed, **shares)
    jobs = [(s, seed, str(images)) for s in studies]
    bar = dict(total=n, desc="synth", unit="img", mininterval=2.0)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in tqdm(pool.map(_write_one, jobs, chunksize=16), **bar):
                pass
    else:
        for job in tqdm(jobs, **bar):
            _write_one(job)
    frame = pd.DataFrame([s.__dict__ for s in studies])
    labels = frame[["id", "boneage", "male"]].assign(
        boneage=frame.boneage.map(_fmt), male=frame.male.map(str)
    )
    with atomic_path(out / "labels.csv") as tmp:
        labels.to_csv(tmp, index=False)
    truth = frame[["id", "true_boneage", "patient", "kind", "inverted", "pose"]]
    with atomic_path(out / "truth.csv") as tmp:
        truth.to_csv(tmp, index=False)
    return frame


def _fmt(v: float) -> str:
    """Readers write whole months: ``120``, not ``120.0``."""
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"
