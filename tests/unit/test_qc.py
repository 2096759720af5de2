"""Quality control on real and synthetic films."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REAL_DATA, real_films

from boneage.imageio import decode
from boneage.qc import (
    MIN_BODY_SHARE,
    MIN_FINGERS,
    body_share,
    check,
    header_rule,
    silhouettes,
    working_image,
)
from boneage.synth.cohort import render_study, sample_studies


def test_real_hands_accepted_with_right_polarity(real_hands):
    for path in real_hands:
        img = decode(path)
        upright, flipped = check(img), check(1.0 - img)
        assert upright.is_hand and not upright.inverted, path.name
        assert flipped.is_hand and flipped.inverted, path.name
        assert upright.fingers >= MIN_FINGERS and upright.rule.startswith("fingers"), path.name


def test_real_chest_and_knee_films_are_not_hands(real_nonhands):
    """Real chest and knee radiographs (most knees with an implant, whose pegs and rims
    stick out like fingers but sideways), as stored and inverted: `no_hand`, with the rule."""
    for path in [*real_nonhands, *real_films(REAL_DATA / "real-knee")]:
        img = decode(path)
        for verdict in (check(img), check(1.0 - img)):
            assert verdict.reason == "no_hand", (path.name, verdict)
            assert verdict.fingers < MIN_FINGERS and verdict.rule, path.name


def test_synthetic_hands_and_nonhands():
    studies = sample_studies(120, seed=11, nonhand_share=0.3, inverted_share=0.2)
    for s in studies:
        verdict = check(render_study(s, 11).astype(np.float32) / 255.0)
        assert verdict.is_hand == (s.kind == "hand"), (s.id, s.kind, verdict.rule)
        if s.kind == "hand":
            assert verdict.inverted == s.inverted, s.id
        else:
            assert verdict.reason == "no_hand"


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_flat_frames_are_not_hands(level):
    img = np.full((200, 160), level, np.float32)
    verdict = check(img)
    assert verdict.reason == "no_hand" and verdict.rule.startswith("contrast")


@pytest.mark.parametrize("shape", [(120, 100), (300, 250), (1200, 1000)])
def test_noise_is_not_a_hand(shape):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    assert check(img).reason == "no_hand"


def test_tiny_films_are_rejected():
    assert check(np.zeros((80, 300), np.float32)).reason == "too_small"


@pytest.mark.parametrize(
    "body_part,modality,rejects",
    [
        ("CHEST", "DX", "BodyPartExamined CHEST"),
        ("knee", "CR", "BodyPartExamined KNEE"),
        ("", "MR", "Modality MR is not a radiograph"),
        ("WHOLE BODY", "NM", "Modality NM is not a radiograph"),
        ("HAND", "DX", None),
        ("", "", None),
        ("SOMETHING ELSE", "CR", None),  # unknown: the pixels decide
        (float("nan"), float("nan"), None),  # empty TSV cells
    ],
)
def test_dicom_header_rules(body_part, modality, rejects):
    assert header_rule(body_part, modality) == rejects


def test_header_overrides_pixels(real_hands):
    img = decode(real_hands[0])
    verdict = check(img, body_part="CHEST")
    assert verdict.reason == "no_hand" and verdict.rule == "BodyPartExamined CHEST"
    assert check(img, body_part="HAND", modality="CR").is_hand


def test_dicom_images_of_other_modalities_are_rejected():
    """pydicom's sample CT, MR, ultrasound and bone-scan images, judged as in a PACS export."""
    import pydicom
    from pydicom.data import get_testdata_file

    names = [
        "CT_small.dcm",
        "MR_small.dcm",
        "JPEG2000.dcm",
        "examples_overlay.dcm",
        "examples_palette.dcm",
        "693_J2KI.dcm",
    ]
    for name in names:
        path = get_testdata_file(name)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        verdict = check(decode(path), ds.get("BodyPartExamined"), ds.get("Modality"))
        assert verdict.reason in ("no_hand", "too_small"), (name, verdict)


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("kind", ["collimator shadow", "fingers together"])
def test_hands_that_are_hard_to_see_are_still_hands(kind, inverted):
    """A collimator's shadow across one side (bright; dark on an inverted film, until QC
    turns it upright: either way it would join the silhouette and hide the fingers behind
    a "palm" wider than any hand's), and fingers held together."""
    from boneage.synth.render import render_hand

    rejected = []
    for k in range(12):
        rng = np.random.default_rng([7, k])
        kw = {"collimated": True} if kind == "collimator shadow" else {"spread": -0.3}
        img = render_hand(rng.uniform(12, 200), bool(k % 2), rng, **kw) / 255.0
        verdict = check(1.0 - img if inverted else img)
        if not verdict.is_hand or verdict.inverted != inverted:
            rejected.append((k, verdict.rule, verdict.inverted))
    assert not rejected, rejected


def test_a_page_of_lines_is_in_pieces():
    """Twelve separate lines from one margin (a text page, inverted): each line is its own
    part of the silhouette, so the largest holds the longest line's share of all lines."""
    img = np.zeros((400, 360), np.float32)
    lengths = np.linspace(150, 255, 12).astype(int)
    for k, length in enumerate(lengths):
        img[40 + 27 * k : 48 + 27 * k, 30 : 30 + length] = 0.8
    assert body_share(silhouettes(working_image(img))) == pytest.approx(
        lengths.max() / lengths.sum(), abs=0.01
    )


def test_a_hand_is_one_body(real_hands):
    for path in real_hands:
        assert body_share(silhouettes(working_image(decode(path)))) >= MIN_BODY_SHARE, path.name


def test_a_text_film_whose_lines_merge_into_fingers_is_not_a_hand():
    """Seed 32's text film 1788 (QC's bench): blurred at QC's size, its lines touch and
    stick out of each other like parallel fingers (6 were counted); its lines are pieces."""
    study = next(s for s in sample_studies(1000, 32, 0.2, 0.1) if s.id == "1788")
    assert study.kind == "text"
    verdict = check(render_study(study, 32).astype(np.float32) / 255.0)
    assert verdict.reason == "no_hand" and verdict.rule.startswith("in pieces"), verdict


def test_two_fingers_joined_above_the_palm_count_as_two():
    """A palm with three fingers drawn on it, two of them joined for their lower third
    (fingers held together: the webbing is high), so the silhouette's protrusions are a
    fork and one finger. The fork is two fingers; without the join, the same three."""
    from boneage.qc import hand_fingers, protrusions

    def hand(joined: bool) -> np.ndarray:
        sil = np.zeros((200, 160), bool)
        sil[100:190, 20:130] = True  # the palm, 110 wide
        for c in (25, 47, 100):  # three fingers, 16 wide, 80 long
            sil[20:100, c : c + 16] = True
        if joined:
            sil[75:100, 25:63] = True  # the first two touch for their lower 25 px
        return sil

    for joined in (False, True):
        fingers = protrusions(hand(joined))
        assert hand_fingers(fingers) == 3, (joined, fingers)


def test_a_hand_whose_fingers_touch_above_the_palm_is_a_hand():
    """Seed 31's hard hand 61 (QC's bench): index and middle finger touch up to their
    middle phalanges, the little finger runs along the film's edge; once 2 fingers."""
    from boneage.synth.render import render_hand

    rng = np.random.default_rng([31, 61])
    img = render_hand(rng.uniform(12, 200), True, rng, spread=rng.uniform(-0.4, 0.0))
    verdict = check(img.astype(np.float32) / 255.0)
    assert verdict.is_hand and verdict.fingers >= 3, verdict


def test_protrusion_moments_match_numpys_covariance():
    from boneage.qc import _moments

    rng = np.random.default_rng(5)
    for _ in range(20):
        r = rng.integers(0, 150, 40)
        c = (r * rng.uniform(-2, 2) + rng.integers(0, 12, 40)).astype(np.intp)
        expected = np.linalg.eigvalsh(np.cov(np.stack([r, c])))
        assert np.allclose(_moments(r, c), expected)
