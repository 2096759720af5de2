"""Synthetic cohorts: determinism, layout, label model and maturity-driven anatomy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from boneage.synth.anatomy import CARPALS, build_hand, hand_length, maturity_years
from boneage.synth.cohort import make_cohort, render_study, sample_studies


def test_cohort_layout_is_rsna_training(tiny_cohort):
    labels = pd.read_csv(tiny_cohort / "labels.csv", dtype=str)
    assert list(labels.columns) == ["id", "boneage", "male"]
    assert set(labels["male"]) <= {"True", "False"}
    for i in labels["id"]:
        assert (tiny_cohort / "images" / f"{i}.png").is_file()
    truth = pd.read_csv(tiny_cohort / "truth.csv")
    assert list(truth.columns) == ["id", "true_boneage", "patient", "kind", "inverted", "pose"]
    assert len(truth) == len(labels) == 40


def test_same_seed_same_bytes(tmp_path):
    a = make_cohort(tmp_path / "a", 6, seed=3)
    b = make_cohort(tmp_path / "b", 6, seed=3)
    pd.testing.assert_frame_equal(a, b)
    for i in a["id"]:
        assert (tmp_path / "a/images" / f"{i}.png").read_bytes() == (
            tmp_path / "b/images" / f"{i}.png"
        ).read_bytes()
    c = make_cohort(tmp_path / "c", 6, seed=4)
    assert not a["true_boneage"].equals(c["true_boneage"])


def test_labels_look_like_readings():
    studies = sample_studies(3000, seed=1)
    frame = pd.DataFrame([s.__dict__ for s in studies])
    noise = frame["boneage"] - frame["true_boneage"]
    assert 5.0 < noise.std() < 8.0  # reader sd 6 months plus rounding
    assert abs(noise.mean()) < 0.6
    assert (frame["boneage"] % 6 == 0).mean() > 0.6  # atlas steps
    assert frame["boneage"].between(1, 228).all()
    assert 110 < frame["boneage"].mean() < 140 and 30 < frame["boneage"].std() < 50
    assert 0.5 < frame["male"].mean() < 0.58
    assert frame.groupby("patient").size().max() >= 2  # follow-up studies exist


def test_anatomy_matures_with_age():
    rng = np.random.default_rng(0)
    carpals = [
        sum(c.name in CARPALS for c in build_hand(m * 12, True, rng).centres)
        for m in (0.5, 4, 8, 14)
    ]
    assert carpals == sorted(carpals) and carpals[0] <= 2 and carpals[-1] == len(CARPALS)
    assert hand_length(1, True) < hand_length(8, True) < hand_length(16, True)


def test_girls_mature_earlier():
    assert maturity_years(13 * 12, male=False) - maturity_years(13 * 12, male=True) > 1.5
    assert maturity_years(12, male=False) - maturity_years(12, male=True) < 0.3


def test_epiphyses_fuse_in_adults():
    rng = np.random.default_rng(1)
    child = build_hand(8 * 12, True, rng)
    adult = build_hand(18.5 * 12, True, rng)
    density = lambda h: np.mean([c.density for c in h.centres if "epiphysis" in c.name])  # noqa: E731
    assert density(child) == 1.0 and density(adult) < 0.6


def test_inverted_and_nonhand_images():
    studies = sample_studies(200, seed=2, nonhand_share=0.2, inverted_share=0.2)
    hand = next(s for s in studies if s.kind == "hand" and not s.inverted)
    inv = next(s for s in studies if s.kind == "hand" and s.inverted)
    img, img_inv = render_study(hand, 2), render_study(inv, 2)
    assert img.dtype == np.uint8 and img.ndim == 2
    assert img[:5].mean() < 128 < img_inv[:5].mean()  # dark vs bright background
    assert {s.kind for s in studies} >= {"hand", "blank", "chest", "text", "knee"}


def test_some_hands_are_hard_to_see_and_qc_keeps_them():
    """At ``hard_share`` 0.2, about a tenth of the hands hold their fingers together and a
    tenth have a collimator's shadow; each is drawn as such (a shadow: a bright flat band
    along the film's edge), every other film is the same pixels as with none, and QC
    accepts every hand."""
    from boneage.qc import check, collimator_shadows, working_image

    plain = sample_studies(300, seed=8, hard_share=0.0)
    hard = sample_studies(300, seed=8, hard_share=0.2)
    hands = [s for s in hard if s.kind == "hand"]
    poses = pd.Series([s.pose for s in hands]).value_counts(normalize=True)
    assert 0.06 < poses["together"] < 0.14 and 0.06 < poses["collimated"] < 0.14
    assert {s.pose for s in hard if s.kind != "hand"} == {"open"}
    assert [(s.id, s.boneage, s.kind) for s in plain] == [(s.id, s.boneage, s.kind) for s in hard]
    for s, p in zip(hard[:60], plain[:60]):
        if s.pose == "open":
            assert np.array_equal(render_study(s, 8), render_study(p, 8)), s.id
    for s in [s for s in hands if s.pose != "open"][:16]:
        img = render_study(s, 8).astype(np.float32) / 255.0
        shadow = collimator_shadows(working_image(1.0 - img if s.inverted else img)).any()
        assert shadow == (s.pose == "collimated"), s.id
        assert check(img).is_hand, (s.id, s.pose, check(img).rule)
