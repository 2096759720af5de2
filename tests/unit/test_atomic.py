"""Atomic writes: a killed writer leaves nothing that outlives the next write."""

from __future__ import annotations

import signal
import subprocess
import sys

import pandas as pd

from boneage.atomic import (
    atomic_path,
    read_tsv,
    read_tsv_span,
    write_text,
    write_tsv,
    write_tsv_indexed,
)

WRITER = """
import sys, time
from boneage.atomic import atomic_path
with atomic_path(sys.argv[1], is_dir=sys.argv[2] == "dir") as tmp:
    (tmp.mkdir() if sys.argv[2] == "dir" else None)
    (tmp / "part" if sys.argv[2] == "dir" else tmp).write_text("half")
    print("writing", flush=True)
    time.sleep(60)
"""


def _killed_writer(path, kind: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), kind], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)  # as when its node dies: no cleanup runs


def test_a_killed_writers_temporaries_go_with_the_next_write(tmp_path):
    out, shard = tmp_path / "preds.tsv", tmp_path / "shard.zarr"
    _killed_writer(out, "file")
    _killed_writer(shard, "dir")
    stale = {p.name.split(".")[1]: p for p in tmp_path.iterdir()}
    assert set(stale) == {"preds", "shard"} and not out.exists() and not shard.exists()
    (tmp_path / ".preds.tsv.notes").write_text("not a temporary")

    write_text(out, "done")
    assert out.read_text() == "done"
    assert not stale["preds"].exists() and stale["shard"].is_dir()  # only its own
    assert (tmp_path / ".preds.tsv.notes").exists()
    with atomic_path(shard, is_dir=True) as tmp:
        tmp.mkdir()
    assert not stale["shard"].exists() and shard.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".preds.tsv.notes",
        "preds.tsv",
        "shard.zarr",
    ]


def test_indexed_tsv_spans_read_back_just_their_rows(tmp_path):
    frame = pd.DataFrame(
        {
            "row": range(1, 8),
            "id": ["007", "a,b", 'say "x"', "d", "e", "f", "g"],
            "boneage": [1.5, None, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    lines = write_tsv_indexed(tmp_path / "t.tsv", frame)
    write_tsv(tmp_path / "plain.tsv", frame)
    assert (tmp_path / "t.tsv").read_bytes() == (tmp_path / "plain.tsv").read_bytes()
    assert len(lines) == len(frame) + 1 and lines[-1] == (tmp_path / "t.tsv").stat().st_size
    part = read_tsv_span(tmp_path / "t.tsv", [int(lines[1]), int(lines[4])])
    pd.testing.assert_frame_equal(
        part, read_tsv(tmp_path / "t.tsv").iloc[1:4].reset_index(drop=True)
    )
    assert part["id"].tolist() == ["a,b", 'say "x"', "d"]
    pd.testing.assert_frame_equal(
        read_tsv_span(tmp_path / "t.tsv", None), read_tsv(tmp_path / "t.tsv")
    )
    # A line break inside a field: lines are not rows, so no offsets are given.
    frame.loc[3, "id"] = "two\nlines"
    assert write_tsv_indexed(tmp_path / "t.tsv", frame) is None
    assert read_tsv(tmp_path / "t.tsv")["id"][3] == "two\nlines"
