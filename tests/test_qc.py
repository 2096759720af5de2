"""Quality control on real and synthetic films."""

from __future__ import annotations

import numpy as np
import pytest

from boneage.preprocess import decode
from boneage.qc import check
from boneage.synth.cohort import render_study, sample_studies


def test_real_hands_accepted_with_right_polarity(real_hands):
    for path in real_hands:
        img = decode(path)
        upright, flipped = check(img), check(1.0 - img)
        assert upright.is_hand and not upright.inverted, path.name
        assert flipped.is_hand and flipped.inverted, path.name


def test_synthetic_hands_and_nonhands():
    studies = sample_studies(120, seed=11, nonhand_share=0.3, inverted_share=0.2)
    for s in studies:
        verdict = check(render_study(s, 11).astype(np.float32) / 255.0)
        assert verdict.is_hand == (s.kind == "hand"), (s.id, s.kind)
        if s.kind == "hand":
            assert verdict.inverted == s.inverted, s.id
        else:
            assert verdict.reason == "no_hand"


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_flat_frames_are_not_hands(level):
    img = np.full((200, 160), level, np.float32)
    assert check(img).reason == "no_hand"


@pytest.mark.parametrize("shape", [(120, 100), (300, 250), (1200, 1000)])
def test_noise_is_not_a_hand(shape):
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    assert check(img).reason == "no_hand"


def test_tiny_films_are_rejected():
    assert check(np.zeros((80, 300), np.float32)).reason == "too_small"
