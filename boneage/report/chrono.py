"""Bone age against chronological age, where a cohort knows the age at the study.

Chronological age comes from DICOM (PatientAge, or birth and study dates) or
a spreadsheet's ``columns.age``; it is in the manifest's ``chrono_age``
(months). The difference predicted bone age minus chronological age is the
clinical question: a large negative one is delayed, a large positive one
advanced maturation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from boneage.metrics import AGE_BANDS, band_of

#: Studies listed for a clinician to look at, the largest differences first.
EXTREMES = 10


def chrono_comparison(
    predictions: pd.DataFrame, manifest: pd.DataFrame, n: int = EXTREMES
) -> dict[str, Any] | None:
    """Difference (months) by sex and age band, and the ``n`` largest; None without ages."""
    if "chrono_age" not in manifest:
        return None
    ages = manifest[["id", "chrono_age"]].assign(id=manifest["id"].astype(str))
    ages = ages[pd.to_numeric(ages["chrono_age"], errors="coerce").notna()]
    frame = predictions.assign(id=predictions["id"].astype(str)).merge(ages, on="id")
    frame["chrono_age"] = frame["chrono_age"].astype(float)
    frame = frame[frame["pred"].notna()]
    if frame.empty:
        return None
    frame["diff"] = frame["pred"] - frame["chrono_age"]
    frame["band"] = band_of(frame["chrono_age"].to_numpy())
    rows = []
    for sex in ("F", "M"):
        for lo, hi in AGE_BANDS:
            band = f"{lo}-{hi} y"
            d = frame[(frame["sex"] == sex) & (frame["band"] == band)]["diff"]
            rows.append(
                {
                    "sex": sex,
                    "band": band,
                    "n": len(d),
                    "mean": float(d.mean()) if len(d) else np.nan,
                    "sd": float(d.std()) if len(d) > 1 else np.nan,
                }
            )
    top = frame.reindex(frame["diff"].abs().sort_values(ascending=False).index).head(n)
    extremes = [
        {
            "id": r.id,
            "sex": r.sex,
            "chrono": float(r.chrono_age),
            "pred": float(r.pred),
            "diff": float(r.diff),
            "direction": "delayed" if r.diff < 0 else "advanced",
        }
        for r in top.itertuples(index=False)
    ]
    return {
        "n": len(frame),
        "mean": float(frame["diff"].mean()),
        "rows": rows,
        "extremes": extremes,
    }
