"""One study at a time: QC, bone age and a saliency overlay for a single PNG or DICOM.

The same steps as the workflow, in the same order: ``imageio.decode`` (as
``shards.build_shard`` calls it), ``qc.check`` with the DICOM header's body
part and modality, ``preprocess.prepare`` at the shard image size, then the
model as ``predict.predict_shard`` runs it. So a film gets the bone age the
workflow would give it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boneage import qc
from boneage.imageio import decode, is_dicom, read_header
from boneage.preprocess import prepare
from boneage.sources.rows import parse_sex


@dataclass
class Estimate:
    """What ``boneage estimate`` reports for one film."""

    qc: qc.QCResult
    sex: str
    months: float | None = None
    overlay: Path | None = None

    @property
    def accepted(self) -> bool:
        return self.qc.reason is None


def header_facts(path: str | os.PathLike[str]) -> dict[str, str]:
    """Sex, body part and modality from a DICOM header ({} for a PNG)."""
    if not is_dicom(path):
        return {}
    ds, _ = read_header(path)
    return {
        "sex": parse_sex(getattr(ds, "PatientSex", "")) or "",
        "body_part": str(ds.get("BodyPartExamined", "") or ""),
        "modality": str(ds.get("Modality", "") or ""),
    }


def estimate_film(
    model_path: str | os.PathLike[str],
    path: str | os.PathLike[str],
    sex: str | None = None,
    image_size: int | None = None,
    overlay: str | os.PathLike[str] | None = None,
) -> Estimate:
    """QC ``path``, predict its bone age (months) and write a saliency overlay PNG.

    ``sex`` (F or M) overrides the DICOM header's; ``image_size`` is the
    shard image size of the run that trained the model (default: the model's
    input size). A film that fails QC gets no prediction.
    """
    from boneage.models import load_model
    from boneage.predict import to_model_input

    facts = header_facts(path)
    sex = (sex or facts.get("sex") or "").upper()
    if sex not in ("F", "M"):
        raise ValueError(f"{path}: sex unknown (no PatientSex in the file): give --sex F or M")
    model = load_model(model_path)
    size = image_size or int(model.input["image"].shape[1])
    img = decode(path, max_side=max(2 * size, 512))  # as shards.build_shard decodes
    verdict = qc.check(img, facts.get("body_part"), facts.get("modality"))
    result = Estimate(qc=verdict, sex=sex)
    if not result.accepted:
        return result
    stored = prepare(1.0 - img if verdict.inverted else img, size)[None, ..., None]
    x = to_model_input(model, stored)
    sex_in = np.array([[1.0 if sex == "M" else 0.0]], np.float32)
    months = float(np.asarray(model({"image": x, "sex": sex_in}, training=False)["months"])[0, 0])
    result.months = round(months, 2)  # as the workflow's prediction tables store it
    if overlay:
        result.overlay = write_overlay(model, x, sex_in, overlay)
    return result


def write_overlay(model, x: np.ndarray, sex: np.ndarray, out: str | os.PathLike[str]) -> Path:
    """The film with its SmoothGrad saliency map blended on top, as a PNG (the report's colours)."""
    import base64

    from boneage.report.review import overlay_uri
    from boneage.saliency import saliency_maps

    heat = saliency_maps(model, x, sex)[0]
    grey = np.clip(x[0, ..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    uri = overlay_uri(grey, heat, size=max(448, grey.shape[0]))
    out = Path(out)
    out.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    return out
