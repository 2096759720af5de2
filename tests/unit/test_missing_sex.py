"""Films with no recorded sex (`missing_sex: average`), on the real hands and their sheet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_HANDS, REAL_SHEET

from boneage.aggregate import aggregate
from boneage.manifest import build_manifest, finalise

pytestmark = pytest.mark.slow

UNRECORDED = {"0", "5", "9"}  # Gender blanked in a copy of the hospital sheet


def _spec(tmp_path, missing_sex: str) -> dict:
    sheet = pd.read_csv(REAL_SHEET, dtype=str)
    sheet.loc[sheet["Study no."].isin(UNRECORDED), "Gender"] = ""
    sheet.to_csv(tmp_path / "labels.csv", index=False)
    return {
        "source": "spreadsheet",
        "table": str(tmp_path / "labels.csv"),
        "images": str(REAL_HANDS),
        "image_pattern": "{id}.png",
        "label_unit": "years",
        "columns": {"id": "Study no.", "boneage": "BA (years)", "sex": "Gender"},
        "missing_sex": missing_sex,
    }


def test_rejected_by_default(tmp_path):
    checked, _, _ = build_manifest(_spec(tmp_path, "reject"), 20)
    reasons = checked.set_index("id")["reason"]
    assert set(reasons[reasons == "missing_sex"].index) == UNRECORDED


def test_averaged_over_both_sexes_scored_apart_and_never_trained_on(tmp_path):
    from boneage.experiment import Experiment
    from boneage.models import build_model
    from boneage.predict import predict_shard
    from boneage.shards import build_shard, read_shard
    from boneage.split import make_split
    from boneage.train import run_training

    checked, plan, _ = build_manifest(_spec(tmp_path, "average"), 20)
    by_id = checked.set_index("id")
    assert (by_id.loc[sorted(UNRECORDED), "sex"] == "U").all()
    assert by_id.loc[sorted(UNRECORDED), "reason"].isna().all()  # kept: labels are usable
    rows = checked.set_index("row").loc[plan[0]["rows"]].reset_index()
    verdicts = build_shard(rows, tmp_path / "s.zarr", 64, "s00000")
    manifest = finalise(checked, [verdicts])
    kept = set(manifest.loc[manifest["status"] == "accepted", "id"].astype(str))
    assert UNRECORDED <= kept  # the real hands pass QC

    model = build_model("small_cnn", 64, 120.0, 40.0)
    model.save(tmp_path / "m.keras")
    pred = predict_shard(tmp_path / "m.keras", tmp_path / "s.zarr").set_index("id")
    shard = read_shard(tmp_path / "s.zarr")
    x = shard.images.astype(np.float32) / 255.0
    as_sex = {
        s: np.asarray(model({"image": x, "sex": np.full((len(x), 1), s, np.float32)})["months"])[
            :, 0
        ]
        for s in (0.0, 1.0)
    }
    for k, sid in enumerate(shard.ids):
        if sid in UNRECORDED:
            want = (as_sex[0.0][k] + as_sex[1.0][k]) / 2
            assert pred.loc[sid, "sex"] == "U"
        else:
            want = as_sex[1.0 if pred.loc[sid, "sex"] == "M" else 0.0][k]
        assert pred.loc[sid, "pred"] == pytest.approx(want, abs=0.006), sid
    _, result = aggregate([pred.reset_index()], None, 120.0, trained_on_cohort=False)
    assert result["label"]["by_sex"]["U"]["n"] == len(UNRECORDED & kept)

    split = make_split(manifest, seed=1, val=0.0, test=0.0)  # every film in train
    summary = run_training(
        Experiment("t", image_size=64, epochs=1, batch_size=2, warmup_epochs=0),
        [str(tmp_path / "s.zarr")],
        split,
        str(tmp_path / "run"),
        threads=1,
    )
    trainable = split[split["label_status"].isin(["exact", "range", "corrected"])]
    assert summary["n_train"] == len(set(trainable["id"].astype(str)) - UNRECORDED)
