"""The real films in tests/data are unchanged copies of the project's shared test data."""

from __future__ import annotations

import pytest
from conftest import REAL_DATA, SHARED_DATA, need

FOLDERS = ("real-hands", "real-nonhand", "real-knee", "hospital-sheet")


@pytest.mark.parametrize("folder", FOLDERS)
def test_copies_equal_the_shared_data(folder):
    origin = SHARED_DATA / folder
    need(origin.is_dir(), f"{origin} (the origin of the copies; CI has ../shared beside the clone)")
    copy = REAL_DATA / folder
    names = sorted(p.name for p in origin.iterdir())
    assert sorted(p.name for p in copy.iterdir()) == names, "refresh: see tests/data/README.md"
    for name in names:
        assert (copy / name).read_bytes() == (origin / name).read_bytes(), name
    assert any(n.startswith("LICENSE") for n in names) or folder == "hospital-sheet"
