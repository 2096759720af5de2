"""The manifest: every source row, accepted or rejected with a reason.

Two stages write it. :func:`check_rows` runs the cheap checks on the table
(paths, labels, sex, duplicates) before any pixel is read and plans the
shards; each shard job then decodes and QCs its rows; :func:`finalise`
merges the shard verdicts back, so the final manifest holds every source
row once: ``rows in = accepted + rejected``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

#: Rejection reasons and what they mean (shown in the report).
REASONS = {
    "duplicate_id": "id already used by an earlier row",
    "path_escapes_root": "image path points outside the image folder",
    "missing_file": "image file not found",
    "empty_file": "image file has 0 bytes",
    "missing_label": "no bone age",
    "impossible_label": "bone age negative or over 20 years",
    "missing_sex": "sex missing or not M/F",
    "unreadable_image": "not an image, truncated or corrupt",
    "decompression_bomb": "absurd pixel count",
    "no_hand": "quality control: not a hand radiograph",
}
MAX_MONTHS = 240.0


def check_rows(rows: pd.DataFrame, image_root: str | os.PathLike[str]) -> pd.DataFrame:
    """Add ``abspath``, ``status`` and ``reason`` columns after the table-level checks.

    The first failing check gives the reason; checks run in the order of
    :data:`REASONS`. ``abspath`` is resolved; paths resolving outside
    ``image_root`` are rejected (no reading of arbitrary files).
    """
    root = Path(image_root).resolve()
    out = rows.copy()
    reasons: list[str | None] = []
    seen: set[str] = set()
    abspaths: list[str] = []
    for r in out.itertuples(index=False):
        path = (root / str(r.path)).resolve()
        abspaths.append(str(path))
        reason = None
        if r.id in seen:
            reason = "duplicate_id"
        elif not path.is_relative_to(root):
            reason = "path_escapes_root"
        elif not path.is_file():
            reason = "missing_file"
        elif path.stat().st_size == 0:
            reason = "empty_file"
        elif not np.isfinite(r.boneage):
            reason = "missing_label"
        elif r.boneage < 0 or r.boneage > MAX_MONTHS:
            reason = "impossible_label"
        elif r.sex not in ("M", "F"):
            reason = "missing_sex"
        seen.add(r.id)
        reasons.append(reason)
    out["abspath"] = abspaths
    out["reason"] = reasons
    out["status"] = np.where(out["reason"].isna(), "accepted", "rejected")
    out["inverted"] = False
    return out


def plan_shards(checked: pd.DataFrame, shard_size: int) -> list[dict[str, object]]:
    """Cut the accepted rows into shards of at most ``shard_size`` (source order)."""
    accepted = checked.loc[checked["status"] == "accepted", "row"].tolist()
    plan = []
    for i in range(0, len(accepted), shard_size):
        plan.append({"shard": f"s{i // shard_size:05d}", "rows": accepted[i:i + shard_size]})
    return plan


def finalise(checked: pd.DataFrame, shard_qc: list[pd.DataFrame]) -> pd.DataFrame:
    """Merge shard QC verdicts (``row, status, reason, inverted, shard``) into the manifest."""
    out = checked.drop(columns=["abspath"]).set_index("row")
    out["shard"] = pd.NA
    if shard_qc:
        qc = pd.concat(shard_qc).set_index("row")
        for col in ("status", "reason", "inverted", "shard"):
            out.loc[qc.index, col] = qc[col]
    out = out.reset_index()
    missing = out["status"].isna().sum()
    if missing:
        raise RuntimeError(f"{missing} manifest rows have no verdict")
    return out


def summarise(manifest: pd.DataFrame) -> dict[str, object]:
    """Counts for the report: rows, accepted, rejected by reason, inverted fixed."""
    rejected = manifest[manifest["status"] == "rejected"]
    return {
        "rows": int(len(manifest)),
        "accepted": int((manifest["status"] == "accepted").sum()),
        "rejected": int(len(rejected)),
        "by_reason": {str(k): int(v) for k, v in rejected["reason"].value_counts().items()},
        "inverted_corrected": int(((manifest["inverted"].astype(str) == "True")
                                   & (manifest["status"] == "accepted")).sum()),
    }
