"""The manifest: every source row, accepted or rejected with a reason.

Two stages write it. :func:`check_rows` runs the cheap checks on the table
(paths, labels, sex, duplicates, review decisions) before any pixel is read,
and :func:`cut_shards` cuts the source into shards; each shard job then
decodes and QCs its rows; :func:`finalise` merges the shard verdicts back,
so the final manifest holds every source row once:
``rows in = accepted + rejected``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boneage.stamps import file_stamp

#: Rejection reasons and what they mean (shown in the report).
REASONS = {
    "unreadable_image": "not an image, or corrupt",
    "truncated": "DICOM pixel data cut short (an incomplete transfer)",
    "missing_id": "no study identifier",
    "deleted_by_review": "deleted by a reviewer (corrections file)",
    "flagged_by_review": "flagged as problematic by a reviewer (corrections file)",
    "duplicate_id": "id already used by an earlier row",
    "path_escapes_root": "image path points outside the image folder",
    "missing_file": "image file not found",
    "empty_file": "image file has 0 bytes",
    "missing_label": "no bone age (empty, N/A)",
    "unparseable_label": "bone age cell could not be read (e.g. a date)",
    "impossible_label": "bone age negative, over 20 years or not a number",
    "missing_sex": "sex missing or not M/F",
    "decompression_bomb": "absurd pixel count",
    "unsupported_compression": "DICOM compression without an installed decoder",
    "too_small": "quality control: under 100 pixels on a side",
    "no_hand": "quality control: not a hand radiograph",
}
MAX_MONTHS = 240.0
#: The sex of a film whose sex is not recorded, where the cohort keeps such films.
SEX_UNKNOWN = "U"


def check_rows(
    rows: pd.DataFrame, image_root: str | os.PathLike[str], missing_sex: str = "reject"
) -> pd.DataFrame:
    """Add ``abspath``, ``stamp`` (image size:mtime), ``status`` and ``reason`` columns.

    The first failing check gives the reason; checks run in the order of
    :data:`REASONS`. ``abspath`` is resolved; paths resolving outside
    ``image_root`` are rejected (no reading of arbitrary files). A row with
    no recorded sex is ``missing_sex``, or with ``missing_sex="average"``
    kept with sex ``U`` (predicted as the mean over both sexes).
    """
    root = str(Path(image_root).resolve())
    out = rows.copy()
    if "error" not in out:
        out["error"] = None
    reasons: list[str | None] = []
    seen: set[str] = set()
    abspaths: list[str] = []
    stamps: list[str] = []
    folders: dict[str, str] = {}  # each folder resolved once, not each of its files
    base = root.rstrip(os.sep) + os.sep
    cols = ("path", "error", "id", "label_status", "boneage", "sex")  # what the checks read
    for rel, error, rid, status, age, sex in zip(*(out[c].tolist() for c in cols)):
        path, st = _resolve(str(rel), base, folders)
        abspaths.append(path)
        stamps.append(f"{st.st_size}:{st.st_mtime_ns}" if st else "missing")  # as file_stamp
        if missing_sex == "average" and sex not in ("M", "F"):
            sex = SEX_UNKNOWN
        reasons.append(_table_reason(error, rid, status, age, sex, path, st, base, seen))
        seen.add(rid)
    if missing_sex == "average":
        out["sex"] = out["sex"].where(out["sex"].isin(["M", "F"]), SEX_UNKNOWN)
    out["abspath"] = abspaths
    out["stamp"] = stamps
    out = out.drop(columns=["error"])
    out["reason"] = reasons
    out["status"] = np.where(out["reason"].isna(), "accepted", "rejected")
    out["inverted"] = False
    return out


def _resolve(rel: str, base: str, folders: dict[str, str]) -> tuple[str, os.stat_result | None]:
    """``rel`` with every symlink resolved (as ``Path.resolve``), and its stat (None if absent).

    ``rel`` is absolute or relative to ``base`` (the resolved image folder and a
    separator). A plain file name there costs one ``lstat``; any other folder is
    resolved once (cached in ``folders``).
    """
    if os.sep not in rel and rel not in ("", ".", ".."):  # a plain name in the image folder
        return _stat(base + rel)
    folder, name = os.path.split(rel if rel.startswith(os.sep) else base + rel)
    real = folders.get(folder)
    if real is None:
        real = folders[folder] = os.path.realpath(folder)
    if name in ("", ".", ".."):
        return _stat(os.path.normpath(os.path.join(real, name)))
    return _stat(real.rstrip(os.sep) + os.sep + name)  # realpath is normal already


def _stat(path: str) -> tuple[str, os.stat_result | None]:
    """``path`` in a resolved folder, resolved itself only when it is a symlink, and its stat.

    One ``lstat`` a row instead of a ``realpath`` walk.
    """
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            path = os.path.realpath(path)
            st = os.stat(path)
    except OSError:
        return path, None
    return path, st


def _table_reason(
    error: str | None,
    rid: str,
    label_status: str,
    boneage: float,
    sex: str,
    path: str,
    st: os.stat_result | None,
    base: str,
    seen: set[str],
) -> str | None:
    """The first table-level check a source row fails (None when it passes).

    ``base``: the resolved image folder and a separator; ``seen``: the ids of earlier rows.
    """
    if isinstance(error, str) and error:
        return error  # the reader already rejected it
    if rid in seen:
        return "duplicate_id"
    if not path.startswith(base) and path != base[:-1]:
        return "path_escapes_root"
    if st is None or not stat.S_ISREG(st.st_mode):
        return "missing_file"
    if st.st_size == 0:
        return "empty_file"
    if label_status == "missing":
        return "missing_label"
    if label_status == "unparseable":
        return "unparseable_label"
    if label_status != "unlabelled" and not (math.isfinite(boneage) and 0 <= boneage <= MAX_MONTHS):
        return "impossible_label"
    if sex not in ("M", "F", SEX_UNKNOWN):
        return "missing_sex"
    return None


def build_manifest(spec: dict, shard_size: int) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """Read a cohort source, apply its corrections, check rows and cut them into shards.

    Returns the checked rows, the shard list and correction ids that matched
    no source row.
    """
    from boneage.corrections import apply_corrections, read_corrections
    from boneage.sources import read_source

    rows, root = read_source(spec)
    unmatched: list[str] = []
    if spec.get("corrections"):
        rows, unmatched = apply_corrections(rows, read_corrections(spec["corrections"]))
    checked = check_rows(rows, root, spec.get("missing_sex") or "reject")
    return checked, cut_shards(checked, shard_size), unmatched


def cut_shards(checked: pd.DataFrame, shard_size: int) -> list[dict[str, Any]]:
    """Cut the source into blocks of ``shard_size`` rows; each block's accepted rows are a shard.

    Blocks follow source rows, not accepted rows, so a correction, deletion or
    new rejection changes only its own shard. Each shard carries a ``digest``
    of what goes into it (rows, labels, image files' size and mtime): the
    shard rule reruns when, and only when, its digest changes.
    """
    accepted = checked[checked["status"] == "accepted"].sort_values("row", kind="stable")
    rows = accepted["row"].tolist()
    lines = _digest_lines(accepted)
    shards = []
    for block, group in itertools.groupby(zip(rows, lines), key=lambda m: (m[0] - 1) // shard_size):
        members = list(group)
        shards.append(
            {
                "shard": f"s{int(block):05d}",
                "rows": [r for r, _ in members],
                "digest": _digest([line for _, line in members]),
            }
        )
    return shards


def add_spans(shards: list[dict[str, Any]], rows: np.ndarray, lines: np.ndarray | None) -> None:
    """Give each shard the byte span of its rows in the rows table: its job reads only those.

    ``rows``: the row number on each line of the table; ``lines``: where each line
    starts, then the file's end (:func:`boneage.atomic.write_tsv_indexed`). Without
    them (a field with a line break) or with rows out of order, shards get no
    span and each shard job reads the whole table.
    """
    if lines is None or not shards or (np.diff(rows) <= 0).any():
        return
    first = np.searchsorted(rows, [s["rows"][0] for s in shards])
    last = np.searchsorted(rows, [s["rows"][-1] for s in shards])
    for shard, start, end in zip(shards, lines[first], lines[last + 1]):
        shard["span"] = [int(start), int(end)]


def shard_digest(rows: pd.DataFrame) -> str:
    """A hash of a shard's inputs: ids, labels, sex and each image file's path, size and mtime."""
    return _digest(_digest_lines(rows))


def _digest(lines: list[str]) -> str:
    """The first 20 hex digits of the SHA-256 of ``lines`` joined."""
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:20]


def _digest_lines(rows: pd.DataFrame) -> list[str]:
    """One line per row of what its shard depends on (see :func:`shard_digest`)."""
    cols = ["row", "id", "sex", "boneage", "label_status", "true_boneage"]
    # The files' size:mtime as check_rows saw them (stat them here for other tables).
    stamps = rows["stamp"] if "stamp" in rows else rows["abspath"].map(file_stamp)
    # Paths inside the run folder count relative to it: a moved run keeps its shards.
    here = os.getcwd() + os.sep
    paths = [p[len(here) :] if p.startswith(here) else p for p in rows["abspath"].tolist()]
    fields = [list(map(str, rows[c].tolist())) for c in cols] + [paths, stamps.tolist()]
    return [f"{'|'.join(r)}\n" for r in zip(*fields)]


def finalise(checked: pd.DataFrame, shard_qc: list[pd.DataFrame]) -> pd.DataFrame:
    """Merge shard QC verdicts (``row, status, reason, inverted, shard, qc``) into the manifest.

    ``qc`` says which rule decided an image's verdict, with its figures.
    """
    out = checked.drop(columns=["abspath"]).set_index("row")
    if "shown_path" in out:  # the manifest is a result: a DICOM file by its pseudonym
        out["path"] = out.pop("shown_path")
    out["shard"] = pd.NA
    out["qc"] = ""
    if shard_qc:
        qc = pd.concat(shard_qc).set_index("row")
        for col in ("status", "reason", "inverted", "shard", "qc"):
            out.loc[qc.index, col] = qc[col]
    out = out.reset_index()
    missing = out["status"].isna().sum()
    if missing:
        raise RuntimeError(f"{missing} manifest rows have no verdict")
    return out


def summarise(manifest: pd.DataFrame) -> dict[str, Any]:
    """Counts for the report: rows, accepted, rejected by reason, inverted fixed, labels."""
    rejected = manifest[manifest["status"] == "rejected"]
    labels = manifest["label_status"].value_counts() if "label_status" in manifest else {}
    fixes = manifest["correction"].value_counts() if "correction" in manifest else {}
    return {
        "labels": {str(k): int(v) for k, v in dict(labels).items()},
        "corrections": {str(k): int(v) for k, v in dict(fixes).items()},
        "rows": int(len(manifest)),
        "accepted": int((manifest["status"] == "accepted").sum()),
        "rejected": int(len(rejected)),
        "by_reason": {str(k): int(v) for k, v in rejected["reason"].value_counts().items()},
        "inverted_corrected": int(
            (
                (manifest["inverted"].astype(str) == "True") & (manifest["status"] == "accepted")
            ).sum()
        ),
    }
