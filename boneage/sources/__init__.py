"""Read cohort sources into one table of source rows (:mod:`boneage.sources.rows`).

One reader per source kind: :mod:`~boneage.sources.rsna` (RSNA 2017 layouts
and the synthetic cohort), :mod:`~boneage.sources.spreadsheet` (hospital
sheets) and :mod:`~boneage.sources.dicom` (DICOM folders). Nothing is
filtered here; :mod:`boneage.manifest` decides what is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def read_source(spec: dict[str, Any]) -> tuple[pd.DataFrame, Path]:
    """Dispatch on ``spec["source"]``; return the rows and the image root."""
    kind = spec["source"]
    if kind in ("rsna", "synthetic"):
        from boneage.sources.rsna import read_rsna

        return read_rsna(
            spec["csv"], spec["images"], spec.get("truth"), spec.get("ground_truth")
        ), Path(spec["images"])
    if kind == "spreadsheet":
        from boneage.sources.spreadsheet import read_spreadsheet

        return read_spreadsheet(spec), Path(spec["images"])
    if kind == "dicom":
        from boneage.sources.dicom import read_dicom_folder

        return read_dicom_folder(spec), Path(spec["folder"])
    raise ValueError(f"unknown cohort source {kind!r}")
