"""Stamps of files and folders: a film rewritten in place changes its folder's stamp, and
worker processes give the stamp one process gives."""

from __future__ import annotations

import hashlib
import os

from boneage import stamps
from boneage.stamps import file_stamp, folder_stamp


def test_folder_stamp_sees_a_file_rewritten_in_place(tmp_path):
    (tmp_path / "sub").mkdir()
    film = tmp_path / "sub" / "a.png"
    film.write_bytes(b"12345")
    (tmp_path / "b.png").write_bytes(b"x")
    os.utime(film, ns=(10**18, 10**18))
    first = folder_stamp(tmp_path)
    assert folder_stamp(tmp_path) == first
    folder_mtime = tmp_path.stat().st_mtime_ns
    with open(film, "r+b") as f:  # same size, same name: only the file's mtime moves
        f.write(b"54321")
    assert tmp_path.stat().st_mtime_ns == folder_mtime  # what Snakemake would look at
    assert folder_stamp(tmp_path) != first
    assert folder_stamp(tmp_path / "none") == "missing"
    assert file_stamp(film) == f"5:{film.stat().st_mtime_ns}"
    assert file_stamp(tmp_path / "none") == "missing"


def test_the_stamp_is_the_digest_of_each_files_path_size_and_mtime(tmp_path):
    """Worked out by hand for a one-file folder: the digest of one line."""
    film = tmp_path / "1.png"
    film.write_bytes(b"abc")
    os.utime(film, ns=(5, 7))
    line = f"{film}\0{3}\0{7}\n".encode()
    assert folder_stamp(tmp_path) == hashlib.sha256(line).hexdigest()[:20]


def test_workers_give_the_stamp_one_process_gives(tmp_path, monkeypatch):
    """Large folders are stat'ed by child processes; the stamp must not depend on how many."""
    (tmp_path / "a").mkdir()
    for i in range(23):
        (tmp_path / ("a" if i % 3 else "") / f"{i}.png").write_bytes(b"x" * i)
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")  # stamped "missing"
    (tmp_path / os.fsdecode(b"odd\xff.png")).write_bytes(b"y")  # a name that is not UTF-8
    one = folder_stamp(tmp_path, workers=1)
    calls = []
    real = stamps._stat_in_worker
    monkeypatch.setattr(stamps, "PARALLEL_FILES", 1)
    monkeypatch.setattr(stamps, "_stat_in_worker", lambda p: calls.append(len(p)) or real(p))
    assert folder_stamp(tmp_path, workers=3) == one
    assert calls == [9, 9, 7]  # 25 files in three children
    (tmp_path / "a" / "4.png").write_bytes(b"z" * 4)  # same size, rewritten
    os.utime(tmp_path / "a" / "4.png", ns=(1, 1))
    assert folder_stamp(tmp_path, workers=3) != one
