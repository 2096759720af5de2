"""Decoding and preprocessing of odd image files."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_png
from PIL import Image

from boneage.imageio import DecodeError, decode
from boneage.preprocess import pad_square, prepare


def test_decode_bit_depths_and_modes(tmp_path):
    ramp = np.tile(np.arange(0, 256, dtype=np.uint8), (4, 1))
    a8 = decode(write_png(tmp_path / "a8.png", ramp))
    p16 = write_png(tmp_path / "a16.png", ramp.astype(np.uint16) * 257)
    with Image.open(p16) as im:
        assert im.mode.startswith("I")  # a real 16-bit PNG
    a16 = decode(p16)
    assert a8.dtype == np.float32 and a8.min() == 0 and a8.max() == 1
    np.testing.assert_allclose(a8, a16, atol=1e-3)
    pal = Image.fromarray(ramp).convert("P")
    pal.save(tmp_path / "pal.png")
    np.testing.assert_allclose(decode(tmp_path / "pal.png"), a8, atol=0.02)
    Image.fromarray(np.stack([ramp] * 3, -1)).save(tmp_path / "rgb.png")
    np.testing.assert_allclose(decode(tmp_path / "rgb.png"), a8, atol=0.01)


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty_file"),
        (b"this is not an image at all", "unreadable_image"),
    ],
)
def test_bad_files_raise_with_reason(tmp_path, content, reason):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(DecodeError) as info:
        decode(p)
    assert info.value.reason == reason


def test_truncated_png(tmp_path):
    p = write_png(tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DecodeError) as info:
        decode(p)
    assert info.value.reason == "unreadable_image"


def test_decompression_bomb(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (9000, 5000)).save(p)  # 45 MPixel, a few kB on disk
    with pytest.raises(DecodeError) as info:
        decode(p)
    assert info.value.reason == "decompression_bomb"


def test_pad_square_keeps_aspect_ratio():
    img = np.ones((10, 4), np.float32)
    sq = pad_square(img, 0.0)
    assert sq.shape == (10, 10)
    assert sq[:, 3:7].sum() == 40 and sq[:, :3].sum() == 0


def test_prepare_shape_and_range():
    img = np.random.default_rng(0).random((300, 170)).astype(np.float32)
    out = prepare(img, 64)
    assert out.shape == (64, 64) and out.dtype == np.uint8 and out.max() == 255


def test_far_off_aspect_ratio_is_padded_not_squashed():
    img = np.zeros((100, 400), np.float32)
    img[30:70, 180:220] = 1.0  # a 40 x 40 square in a very wide film
    out = prepare(img, 64)
    rows, cols = np.nonzero(out > 128)
    assert abs((rows.max() - rows.min()) - (cols.max() - cols.min())) <= 1  # still square
    assert out[:20].max() < 10 and out[-20:].max() < 10  # padded above and below


def test_decode_shrinks_large_films(tmp_path):
    rng = np.random.default_rng(1)
    big = rng.integers(0, 255, (1800, 1300), np.uint8)
    p = write_png(tmp_path / "big.png", big)
    full, small = decode(p), decode(p, max_side=512)
    assert full.shape == (1800, 1300) and small.shape == (600, 434)
    np.testing.assert_allclose(small.mean(), full.mean(), atol=1e-3)
    p16 = write_png(tmp_path / "big16.png", big.astype(np.uint16) * 257)
    np.testing.assert_allclose(decode(p16, max_side=512), small, atol=1 / 255)  # 8-bit rounding
