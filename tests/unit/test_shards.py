"""Shard I/O: Zarr v3 and HDF5, atomic, self-contained."""

from __future__ import annotations

import numpy as np
import pytest

from boneage.shards import Shard, read_shard, write_shard


def _shard(n: int) -> Shard:
    rng = np.random.default_rng(n)
    return Shard(
        images=rng.integers(0, 255, (n, 16, 16, 1), np.uint8),
        sex=rng.integers(0, 2, n).astype(np.uint8),
        boneage=rng.uniform(0, 228, n).astype(np.float32),
        true=np.full(n, np.nan, np.float32),
        row=np.arange(n) + 1,
        ids=[f"<id{i}>" for i in range(n)],
    )


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
@pytest.mark.parametrize("n", [0, 1, 70])
def test_round_trip(tmp_path, suffix, n):
    path = tmp_path / f"s{suffix}"
    shard = _shard(n)
    write_shard(path, shard)
    back = read_shard(path)
    assert back.ids == shard.ids
    np.testing.assert_array_equal(back.images, shard.images)
    np.testing.assert_array_equal(back.boneage, shard.boneage)
    assert back.images.shape == (n, 16, 16, 1)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries left
    assert read_shard(path, images=False).ids == shard.ids


def test_zarr_is_v3(tmp_path):
    write_shard(tmp_path / "s.zarr", _shard(2))
    assert (tmp_path / "s.zarr" / "zarr.json").is_file()


def test_a_zarr_shard_is_five_files_at_any_size(tmp_path):
    """Chunks are packed by the sharding codec: Lustre and GPFS see 5 files, not one per chunk."""
    for n in (1, 300):
        path = tmp_path / f"s{n}.zarr"
        write_shard(path, _shard(n))
        assert len([p for p in path.rglob("*") if p.is_file()]) == 5
        back = read_shard(path)
        np.testing.assert_array_equal(back.row, np.arange(n) + 1)
        assert back.row.dtype == np.int64 and back.sex.dtype == np.uint8


def test_reads_shards_of_the_earlier_layout(tmp_path):
    """Shards written before sharding (one chunked array per name) still read the same."""
    import zarr

    shard = _shard(70)
    root = zarr.open_group(str(tmp_path / "old.zarr"), mode="w", zarr_format=3)
    for name in ("images", "sex", "boneage", "true", "row"):
        data = getattr(shard, name)
        root.create_array(name, shape=data.shape, chunks=(64,) + data.shape[1:], dtype=data.dtype)
        root[name][...] = data
    root.attrs["ids"] = shard.ids
    back = read_shard(tmp_path / "old.zarr")
    assert back.ids == shard.ids
    np.testing.assert_array_equal(back.images, shard.images)
    np.testing.assert_array_equal(back.boneage, shard.boneage)


@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_failed_write_leaves_nothing(tmp_path, suffix):
    bad = _shard(3)
    bad.images = bad.images.astype(object)  # no store takes Python objects: fails mid-write
    with pytest.raises((TypeError, ValueError)):
        write_shard(tmp_path / f"s{suffix}", bad)
    assert list(tmp_path.iterdir()) == []


def test_pipeline_shards(tiny_shards):
    paths, split = tiny_shards
    total = sum(len(read_shard(p)) for p in paths)
    assert total == len(split) > 20
    shard = read_shard(paths[0])
    assert shard.images.shape[1:] == (32, 32, 1) and shard.images.dtype == np.uint8
    assert np.isfinite(shard.true).all()
