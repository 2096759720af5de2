"""Measure image QC on real and synthetic films, side by side; exit 1 on a miss.

* real hands (``tests/data/real-hands``), as stored and inverted: every one
  must be accepted with the right polarity;
* real non-hand radiographs (``tests/data/real-nonhand``, chest films, and
  ``tests/data/real-knee``, knees, most with implants), as stored and
  inverted: every one must be rejected as ``no_hand``;
* pydicom's sample images of other modalities (CT, MR, ultrasound, bone scan),
  judged by their pixels alone and with their DICOM header: held out, never
  used to tune QC (printed for information; the header must reject them all);
* synthetic films with known non-hands and inversions: ``no_hand`` precision
  and recall and polarity accuracy must stay at or above ``--synthetic-target``;
* hard synthetic hands (a collimator's shadow across one side, fingers held
  together; and, with no target, fingers crossed): the share accepted must
  stay at or above ``--synthetic-target`` too.

Run: ``python bench/qc_accuracy.py --n 1000``
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from boneage.imageio import decode
from boneage.qc import check
from boneage.synth.cohort import render_study, sample_studies

SHARED = Path(__file__).resolve().parents[1] / "tests" / "data"  # copies of ../shared/data
OTHER_MODALITIES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_jpeg2k.dcm",
    "image_dfl.dcm",
]


def synthetic(n: int, seed: int) -> Counter:
    """Confusion counts on ``n`` synthetic films (20 % non-hand, 10 % inverted)."""
    c: Counter = Counter()
    # hard-to-see hands are measured on their own (hard_hands), at 100 of each kind
    for s in sample_studies(n, seed, nonhand_share=0.2, inverted_share=0.1, hard_share=0.0):
        verdict = check(render_study(s, seed).astype(np.float32) / 255.0)
        truth_no_hand = s.kind != "hand"
        c[
            "tp"
            if truth_no_hand and not verdict.is_hand
            else "fn"
            if truth_no_hand
            else "fp"
            if not verdict.is_hand
            else "tn"
        ] += 1
        if s.kind == "hand":
            c["polarity_ok" if verdict.inverted == s.inverted else "polarity_wrong"] += 1
    return c


def real_films(folder: Path) -> list[Path]:
    """The films of a tests/data folder; exits when the folder is missing."""
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".jpg"))
    if not files:
        sys.exit(f"qc_accuracy: no films in {folder} (see tests/data/README.md)")
    return files


def real_figures() -> list[str]:
    """Print the real-film figures; return what missed."""
    misses = []
    hands = real_films(SHARED / "real-hands")
    accepted = polarity = 0
    for p in hands:
        img = decode(p)
        up, down = check(img), check(1.0 - img)
        accepted += up.is_hand + down.is_hand
        polarity += (not up.inverted) + down.inverted
        if not (up.is_hand and down.is_hand):
            misses.append(f"real hand {p.name} rejected ({up.rule} / inverted: {down.rule})")
    print(
        f"real hands ({len(hands)}, as stored and inverted): accepted "
        f"{accepted}/{2 * len(hands)}, polarity right {polarity}/{2 * len(hands)}"
    )
    if polarity < 2 * len(hands):
        misses.append("a real hand's polarity is wrong")
    for folder, what in (("real-nonhand", "chest films"), ("real-knee", "knee films")):
        others = real_films(SHARED / folder)
        rejected = 0
        for p in others:
            img = decode(p)
            for label, verdict in (("", check(img)), (" inverted", check(1.0 - img))):
                rejected += verdict.reason == "no_hand"
                if verdict.reason != "no_hand":
                    misses.append(f"real non-hand {p.name}{label} accepted ({verdict.rule})")
        print(
            f"real non-hands ({len(others)} {what}, as stored and inverted): "
            f"rejected {rejected}/{2 * len(others)}"
        )
    return misses


def other_modalities() -> list[str]:
    """pydicom's CT/MR/US/NM samples: pixels alone, then with the header (held out)."""
    import pydicom
    from pydicom.data import get_testdata_file

    by_pixels = by_header = 0
    misses = []
    for name in OTHER_MODALITIES:
        path = get_testdata_file(name)
        assert isinstance(path, str), f"pydicom lacks its test file {name}"
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        img = decode(path)
        by_pixels += not check(img).is_hand
        with_header = check(img, ds.get("BodyPartExamined"), ds.get("Modality"))
        by_header += not with_header.is_hand
        if with_header.is_hand:
            misses.append(f"{name} ({ds.get('Modality')}) accepted with its header")
    print(
        f"other modalities ({len(OTHER_MODALITIES)} pydicom samples, held out): rejected "
        f"{by_pixels}/{len(OTHER_MODALITIES)} by pixels alone, "
        f"{by_header}/{len(OTHER_MODALITIES)} with the DICOM header"
    )
    return misses


def hard_hands(n: int, seed: int) -> dict[str, float]:
    """Share accepted of synthetic hands that are hard to see as hands: a collimator's
    shadow across one side, fingers held together (spread 0 to -0.4, touching), and
    fingers crossed over each other (spread -1.2, beyond what a hand does)."""
    from boneage.synth.render import render_hand

    shares = {}
    for name, kw in (
        ("collimator shadow", {"collimated": True}),
        ("fingers together", {"spread": None}),
        ("fingers crossed", {"spread": -1.2}),
    ):
        accepted = 0
        for k in range(n):
            rng = np.random.default_rng([seed, k])
            if name == "fingers together":
                kw = {"spread": rng.uniform(-0.4, 0.0)}
            img = render_hand(rng.uniform(12, 200), bool(k % 2), rng, **kw)
            accepted += check(img.astype(np.float32) / 255.0).is_hand
        shares[name] = accepted / n
    return shares


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[31, 32])
    ap.add_argument(
        "--synthetic-target",
        type=float,
        default=0.995,
        help="least no_hand precision, recall and polarity accuracy on synthetic films",
    )
    a = ap.parse_args()
    misses = real_figures() + other_modalities()
    for seed in a.seeds:
        misses += synthetic_figures(a, seed)
    if misses:
        print("MISSED:\n  " + "\n  ".join(misses))
        sys.exit(1)
    print("all targets met")


def synthetic_figures(a: argparse.Namespace, seed: int) -> list[str]:
    """Print one seed's synthetic figures; return what missed."""
    misses = []
    c = synthetic(a.n, seed)
    precision = c["tp"] / max(c["tp"] + c["fp"], 1)
    recall = c["tp"] / max(c["tp"] + c["fn"], 1)
    polarity = c["polarity_ok"] / max(c["polarity_ok"] + c["polarity_wrong"], 1)
    print(
        f"synthetic (seed {seed}), {a.n} films ({c['tp'] + c['fn']} not hands): no_hand precision "
        f"{precision:.3f}  recall {recall:.3f}  (tp {c['tp']}, fp {c['fp']}, fn {c['fn']}); "
        f"polarity accuracy on hands {polarity:.3f}"
    )
    for name, value in (("precision", precision), ("recall", recall), ("polarity", polarity)):
        if value < a.synthetic_target:
            misses.append(f"synthetic {name} {value:.3f} < {a.synthetic_target}")
    hard = hard_hands(a.n // 10, seed)
    print(
        f"hard synthetic hands ({a.n // 10} each), accepted: "
        + ", ".join(f"{k} {v:.3f}" for k, v in hard.items())
    )
    for name in ("collimator shadow", "fingers together"):  # crossed fingers: no target
        if hard[name] < a.synthetic_target:
            misses.append(f"hard hands, {name}: {hard[name]:.3f} < {a.synthetic_target}")
    return misses


if __name__ == "__main__":
    main()
