"""Measure image QC: precision/recall of ``no_hand`` and polarity accuracy.

On a synthetic set with known non-hand films (blank, chest, text page,
knee) and known inversions, and on the real radiographs in
``../shared/data/real-hands`` with their inverted copies. Run:
``python bench/qc_accuracy.py --n 1000``
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from boneage.preprocess import decode
from boneage.qc import check
from boneage.synth.cohort import render_study, sample_studies

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-hands"


def synthetic(n: int, seed: int) -> Counter:
    """Confusion counts on ``n`` synthetic films (20 % non-hand, 10 % inverted)."""
    c: Counter = Counter()
    for s in sample_studies(n, seed, nonhand_share=0.2, inverted_share=0.1):
        verdict = check(render_study(s, seed).astype(np.float32) / 255.0)
        truth_no_hand = s.kind != "hand"
        c["tp" if truth_no_hand and not verdict.is_hand else
          "fn" if truth_no_hand else "fp" if not verdict.is_hand else "tn"] += 1
        if s.kind == "hand":
            c["polarity_ok" if verdict.inverted == s.inverted else "polarity_wrong"] += 1
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=31)
    a = ap.parse_args()
    c = synthetic(a.n, a.seed)
    precision = c["tp"] / max(c["tp"] + c["fp"], 1)
    recall = c["tp"] / max(c["tp"] + c["fn"], 1)
    polarity = c["polarity_ok"] / max(c["polarity_ok"] + c["polarity_wrong"], 1)
    print(f"synthetic, {a.n} films ({c['tp'] + c['fn']} not hands):")
    print(f"  no_hand precision {precision:.3f}  recall {recall:.3f}  "
          f"(tp {c['tp']}, fp {c['fp']}, fn {c['fn']})")
    print(f"  polarity accuracy on hands {polarity:.3f}")
    files = sorted(REAL.glob("*.png"))
    if not files:
        print(f"real hands: not found in {REAL}")
        return
    ok_hand = ok_pol = ok_inv = 0
    for p in files:
        img = decode(p)
        up, down = check(img), check(1.0 - img)
        ok_hand += up.is_hand and down.is_hand
        ok_pol += not up.inverted
        ok_inv += down.inverted
    print(f"real hands ({len(files)}): accepted as hands {ok_hand}/{len(files)}, "
          f"polarity right {ok_pol}/{len(files)}, inverted copies detected {ok_inv}/{len(files)}")


if __name__ == "__main__":
    main()
