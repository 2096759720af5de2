"""RSNA Pediatric Bone Age Challenge 2017 layouts, exactly as distributed.

* training: ``id,boneage,male`` (male True/False, boneage in months)
* validation: ``Image ID,male,Bone Age (months)``
* test: ``Case ID,Sex`` (M/F); labels in a ground-truth file
  ``Case ID,Sex,Ground truth bone age (months)`` (decimals)

Images are ``<id>.png`` anywhere under the image folder (nested folders are
searched). A synthetic cohort uses the training layout plus a side file
``truth.csv`` (``id,true_boneage[,patient]``).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from boneage.labels import parse_labels
from boneage.sources.rows import finish, image_index, parse_sex

LAYOUTS = {
    "training": {"id": "id", "boneage": "boneage", "sex": "male"},
    "validation": {"id": "Image ID", "boneage": "Bone Age (months)", "sex": "male"},
    "test": {"id": "Case ID", "sex": "Sex"},
}
GROUND_TRUTH = {"id": "Case ID", "boneage": "Ground truth bone age (months)"}


def detect_layout(columns: list[str]) -> str:
    """Which RSNA layout a CSV header is; ValueError naming what was found otherwise."""
    for name, cols in LAYOUTS.items():
        if set(cols.values()) <= set(columns):
            return name
    expected = "; ".join(f"{n}: {','.join(c.values())}" for n, c in LAYOUTS.items())
    raise ValueError(f"not an RSNA CSV (columns {columns}); expected one of {expected}")


def read_rsna(
    csv: str | os.PathLike[str],
    images: str | os.PathLike[str],
    truth: str | os.PathLike[str] | None = None,
    ground_truth: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read any RSNA layout; ``ground_truth`` gives the test set's labels."""
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    raw.columns = [c.strip() for c in raw.columns]
    layout = detect_layout(list(raw.columns))
    cols = LAYOUTS[layout]
    ids = raw[cols["id"]].str.strip()
    if "boneage" in cols:
        label_cells = raw[cols["boneage"]]
    elif ground_truth is not None:
        gt = pd.read_csv(ground_truth, dtype=str, keep_default_na=False)
        gt.columns = [c.strip() for c in gt.columns]
        label_cells = ids.map(
            gt.set_index(gt[GROUND_TRUTH["id"]].str.strip())[GROUND_TRUTH["boneage"]]
        ).fillna("")
    else:
        label_cells = pd.Series([""] * len(raw))
    values, statuses = parse_labels(label_cells)
    found = image_index(images)
    frame = pd.DataFrame(
        {
            "id": ids,
            "path": [found.get(i, f"{i}.png") for i in ids],
            "sex": raw[cols["sex"]].map(parse_sex),
            "boneage": values,  # RSNA labels are months already
            "label_raw": list(label_cells),
            "label_status": statuses if "boneage" in cols or ground_truth else "unlabelled",
        }
    )
    if truth is not None:
        side = pd.read_csv(truth, dtype={"id": str, "patient": str}).drop_duplicates("id")
        side = side.set_index("id")
        if "true_boneage" in side:
            frame["true_boneage"] = frame["id"].map(side["true_boneage"]).astype(float)
        if "patient" in side:
            frame["patient"] = frame["id"].map(side["patient"])
    if "true_boneage" not in frame:
        frame["true_boneage"] = np.nan
    return finish(frame)
