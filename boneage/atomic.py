"""Atomic writes: every output appears complete or not at all (temp + rename)."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def remove_stale(final: Path) -> None:
    """Remove temporaries of ``final`` that a killed writer left (one writer per output).

    A job killed with its node (SIGKILL: no ``finally``) leaves ``.<name>.<8 chars>``.
    """
    for old in final.parent.glob(f".{glob.escape(final.name)}.*"):
        if re.fullmatch(r"[a-z0-9_]{8}", old.name[len(final.name) + 2 :]):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` on success.

    The temporary lives in the same directory, so the final ``os.replace`` is
    atomic on POSIX file systems. On error the temporary is removed and
    ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    tmp = (
        Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        if is_dir
        else Path(tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)[1])
    )
    try:
        if is_dir:
            shutil.rmtree(tmp)
        else:
            tmp.unlink()
        yield tmp
        if is_dir and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_tsv(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a data frame as TSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="NA", lineterminator="\n")


def write_tsv_indexed(path: str | os.PathLike[str], frame: pd.DataFrame) -> np.ndarray | None:
    """:func:`write_tsv`, returning where each row's line starts in the file, then its end.

    None when a field holds a line break: lines are then not rows.
    """
    write_tsv(path, frame)
    ends = np.flatnonzero(np.fromfile(path, dtype=np.uint8) == ord("\n"))  # from page cache
    return ends + 1 if len(ends) == len(frame) + 1 else None


def tsv_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """How to read ``frame``'s columns back from :func:`write_tsv`: text stays text.

    A part of a table read without them would guess each column from its own
    rows (a span whose labels are all whole numbers reads them as integers).
    """
    kinds = {str(c): t for c, t in frame.dtypes.items()}
    text = {c: "object" for c, t in kinds.items() if str(t) in ("object", "string")}
    numbers = {c: str(t) for c, t in kinds.items() if getattr(t, "kind", "?") in "iufb"}
    return {**text, **numbers}  # anything else (dates) as pandas reads it


def read_tsv(
    path: str | os.PathLike[str] | io.BytesIO, dtype: dict[str, str] | None = None
) -> pd.DataFrame:
    """Read a TSV written by :func:`write_tsv` (``id`` columns stay strings)."""
    return pd.read_csv(
        path,
        sep="\t",
        dtype={**(dtype or {}), "id": str, "patient": str},
        na_values=["NA"],
        keep_default_na=False,
    )


def read_tsv_span(
    path: str | os.PathLike[str], span: list[int] | None, dtype: dict[str, str] | None = None
) -> pd.DataFrame:
    """The rows of a TSV between two byte offsets (from :func:`write_tsv_indexed`); all without.

    A shard job of a million-row cohort reads its hundred rows, not the table.
    """
    if span is None:
        return read_tsv(path, dtype)
    with open(path, "rb") as fh:
        header = fh.readline()
        fh.seek(span[0])
        body = fh.read(span[1] - span[0])
    return read_tsv(io.BytesIO(header + body), dtype)


def looks_like_wildcard(path: str) -> bool:
    """True for a path Snakemake would read as holding a wildcard (``{name}``)."""
    return re.search(r"\{\s*[.\w]+\s*(,[^{}]*)?\}", str(path)) is not None


def load_json(value: str | os.PathLike[str]) -> Any:
    """JSON from a file (what the workflow passes) or, typed by hand, inline JSON text."""
    text = str(value)
    if text.lstrip().startswith(("{", "[")) and not os.path.exists(text):
        return json.loads(text)
    return json.loads(Path(text).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    """Serialise NumPy scalars and paths."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
