"""Stamps: short strings that change when a file or a folder's files do.

A film rewritten in place leaves its folder's mtime as it was, so a folder's
stamp covers every file under it: path, size and mtime, one stat each. At a
million films that is seconds of system time on every Snakemake start, so
large folders are stat'ed by worker processes, one per core (up to
:data:`MAX_WORKERS`), each on its block of the listing; the stamp is the same
digest of the same lines in the same order as one process makes.

This module imports nothing heavy: its workers start in milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import IO

#: A folder with at least this many files is stat'ed by worker processes.
PARALLEL_FILES = 50_000
MAX_WORKERS = 8


def file_stamp(path: str | os.PathLike[str]) -> str:
    """``size:mtime_ns`` of a file or folder ("missing" when absent): changes when it does."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def folder_files(path: str | os.PathLike[str]) -> list[str]:
    """Every file under a folder (links followed), in listing order; no stat but the folders'."""
    files, stack = [], [str(path)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir(follow_symlinks=True):
                    stack.append(e.path)
                else:
                    files.append(e.path)
    return files


def stat_lines(paths: list[str]) -> bytes:
    """One line per file: its path, size and mtime (``missing`` for a dangling link)."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:  # a dangling link: the manifest rejects it
            out.append(f"{p}\0missing\n")
            continue
        out.append(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n")
    return "".join(out).encode("utf-8", "surrogateescape")


def _workers() -> int:
    """Cores this process may use (its affinity: a login node's or a job's share)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _stat_in_worker(paths: list[str]) -> bytes:
    """:func:`stat_lines` of ``paths`` in a child process (paths in, lines out, on pipes)."""
    with subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__)],  # the standard library only
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        feed = threading.Thread(target=_feed, args=(proc.stdin, paths))
        feed.start()  # all paths in one write (subprocess.run's input= writes 512 bytes at once)
        lines = proc.stdout.read()
        feed.join()
    if proc.returncode:
        raise OSError(f"folder_stamp: a stat worker exited with {proc.returncode}")
    return lines


def _feed(pipe: IO[bytes], paths: list[str]) -> None:
    with pipe:
        pipe.write(b"\0".join(os.fsencode(p) for p in paths))


def folder_stamp(path: str | os.PathLike[str], workers: int | None = None) -> str:
    """A digest of every file under a folder: its path, size and mtime ("missing" when absent).

    Changes when any file is added, removed or rewritten, also in place. One
    stat per file: about 3.3 s per million files in one process, 2.5 s with two.
    ``workers``: processes for a large folder (default: the cores this process
    may use, up to :data:`MAX_WORKERS`); the digest does not depend on it.
    """
    if not os.path.isdir(path):
        return "missing"
    files = folder_files(path)
    workers = workers or _workers()
    h = hashlib.sha256()
    if workers == 1 or len(files) < PARALLEL_FILES:
        h.update(stat_lines(files))
    else:
        size = -(-len(files) // workers)
        blocks = [files[i : i + size] for i in range(0, len(files), size)]
        with ThreadPoolExecutor(len(blocks)) as pool:  # threads wait on the children's pipes
            for lines in pool.map(_stat_in_worker, blocks):
                h.update(lines)
    return h.hexdigest()[:20]


if __name__ == "__main__":  # a folder_stamp worker: NUL-separated paths in, lines out
    given = sys.stdin.buffer.read()
    names = [os.fsdecode(p) for p in given.split(b"\0")] if given else []
    sys.stdout.buffer.write(stat_lines(names))
