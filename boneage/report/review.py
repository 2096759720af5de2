"""Cases for people to look at: label review list, QC rejections, thumbnails."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from boneage.atomic import read_tsv
from boneage.corrections import COLUMNS as CORRECTION_COLUMNS
from boneage.corrections import read_corrections
from boneage.imageio import DecodeError, decode
from boneage.report.collect import private_rows
from boneage.shards import read_shard

QC_THUMBS_PER_REASON = 4
THUMB = 112


def image_uri(img: np.ndarray, size: int = THUMB) -> str:
    """A grey image (float in [0, 1] or uint8) as a small inline PNG data URI."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    im = Image.fromarray(arr.squeeze())
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def overlay_uri(image: np.ndarray, heat: np.ndarray, size: int = 2 * THUMB) -> str:
    """A grey image (uint8 (S, S)) with a saliency map (uint8 (S, S)) blended on top."""
    from matplotlib import colormaps

    grey = image.astype(np.float32)[..., None] / 255.0
    colour = colormaps["inferno"](heat.astype(np.float32) / 255.0)[..., :3]
    alpha = 0.65 * (heat.astype(np.float32) / 255.0)[..., None]
    rgb = (grey * (1 - alpha) + colour * alpha) * 255.0
    im = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    im = im.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def saliency_examples(path: Path) -> list[dict]:
    """Typical and worst example predictions with saliency overlays, from a saliency .npz."""
    if not path.exists():
        return []
    with np.load(path, allow_pickle=False) as f:
        return [
            {
                "id": str(f["ids"][i]),
                "kind": str(f["kind"][i]),
                "sex": str(f["sex"][i]),
                "label": float(f["label"][i]),
                "pred": float(f["pred"][i]),
                "image": image_uri(f["images"][i], 2 * THUMB),
                "overlay": overlay_uri(f["images"][i], f["maps"][i]),
            }
            for i in range(len(f["ids"]))
        ]


def shard_images(results: Path, cohort: str, ids: list[str]) -> dict[str, np.ndarray]:
    """Preprocessed images of ``ids`` from the cohort's shards (via its index)."""
    import json

    index_path = results / "cohorts" / cohort / "index.json"
    if not index_path.exists():
        return {}
    index = json.loads(index_path.read_text())
    wanted, found = set(ids), dict[str, np.ndarray]()
    for entry in index["shards"]:
        path = Path(entry["path"])
        if not path.is_absolute():
            path = results.parent / path
        if not path.exists() or not wanted - set(found):
            continue
        shard = read_shard(path)
        for i, sid in enumerate(shard.ids):
            if sid in wanted:
                found[sid] = shard.images[i]
    return found


def label_review(results: Path, cohort: str, frame: pd.DataFrame, n: int) -> list[dict]:
    """The ``n`` labelled images whose label disagrees most with the model.

    Each case carries what the report's review controls need: id, sex, label,
    prediction, subset, a thumbnail and a default note for the corrections file.
    """
    labelled = frame[frame["boneage"].notna()].copy()
    labelled["disagreement"] = (labelled["pred"] - labelled["boneage"]).abs()
    top = labelled.nlargest(n, "disagreement")
    images = shard_images(results, cohort, top["id"].astype(str).tolist())
    return [
        {
            "id": str(r.id),
            "sex": r.sex,
            "label": r.boneage,
            "pred": r.pred,
            "diff": r.pred - r.boneage,
            "subset": str(getattr(r, "subset", "") or ""),
            "note": f"label {r.boneage:.0f} mo, model {r.pred:.0f} mo",
            "thumb": image_uri(images[str(r.id)]) if str(r.id) in images else None,
        }
        for r in top.itertuples(index=False)
    ]


def earlier_corrections(spec: dict) -> list[list[str]]:
    """The rows of a cohort's configured corrections file, as strings (none if it has none).

    The report's download starts with them, so the file it builds replaces
    the old one without losing a decision.
    """
    path = spec.get("corrections")
    if not path or not os.path.isfile(path):
        return []
    table = read_corrections(path)
    months = table["boneage_months"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    table = table.astype(object).where(table.notna(), "").assign(boneage_months=months)
    return [[str(v) for v in row] for row in table[CORRECTION_COLUMNS].itertuples(index=False)]


def qc_gallery(
    results: Path, cohort: str, per_reason: int = QC_THUMBS_PER_REASON
) -> dict[str, list[dict]]:
    """A few rejected films per QC/decoding reason, with thumbnails where they decode."""
    rows_path = private_rows(results, cohort)
    manifest_path = results / "cohorts" / cohort / "manifest.tsv"
    if not rows_path.exists() or not manifest_path.exists():
        return {}
    paths = read_tsv(rows_path).set_index("row")["abspath"]
    manifest = read_tsv(manifest_path)
    rejected = manifest[manifest["status"] == "rejected"]
    gallery: dict[str, list[dict]] = {}
    for reason, group in rejected.groupby("reason"):
        items = []
        for r in group.head(per_reason).itertuples(index=False):
            thumb, note = None, ""
            path = paths.get(r.row)
            if reason == "path_escapes_root":  # never open files outside the image root
                note = "not opened"
            elif isinstance(path, str) and os.path.isfile(path):
                try:
                    thumb = image_uri(decode(path, max_side=2 * THUMB))
                except DecodeError as exc:
                    note = exc.reason
            else:
                note = "no file"
            rule = getattr(r, "qc", "")
            items.append(
                {
                    "id": r.id,
                    "thumb": thumb,
                    "note": note,
                    "rule": rule if isinstance(rule, str) else "",
                }
            )
        gallery[str(reason)] = items
    return gallery
