"""The manifest accounts for every source row, with a reason for each rejection."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import write_png

from boneage.atomic import read_tsv, read_tsv_span, tsv_dtypes, write_tsv_indexed
from boneage.manifest import (
    REASONS,
    add_spans,
    check_rows,
    cut_shards,
    finalise,
    summarise,
)
from boneage.shards import build_shard
from boneage.sources.rsna import read_rsna


def _bad_cohort(tmp_path):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in ("1", "2", "3", "dup", "neg", "old", "nolabel", "nosex"):
        write_png(img_dir / f"{i}.png", rng.integers(0, 255, (40, 30), np.uint8))
    (img_dir / "empty.png").write_bytes(b"")
    (img_dir / "text.png").write_text("not an image")
    (tmp_path / "secret.png").write_bytes((img_dir / "1.png").read_bytes())
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "id,boneage,male\n"
        "1,120,True\n2,96,False\n3,30,True\n"
        "dup,60,True\ndup,61,True\n"
        "neg,-5,True\nold,260,False\nnolabel,,True\nnosex,100,maybe\n"
        "missing,100,True\nempty,100,True\ntext,100,False\n"
        "../secret,100,True\n"
    )
    return csv, img_dir


def test_each_bad_row_gets_its_reason(tmp_path):
    csv, img_dir = _bad_cohort(tmp_path)
    checked = check_rows(read_rsna(csv, img_dir), img_dir)
    reasons = dict(zip(checked["id"] + "@" + checked["row"].astype(str), checked["reason"]))
    assert reasons["dup@5"] == "duplicate_id" and reasons["dup@4"] is None
    assert reasons["neg@6"] == "impossible_label"
    assert reasons["old@7"] == "impossible_label"
    assert reasons["nolabel@8"] == "missing_label"
    assert reasons["nosex@9"] == "missing_sex"
    assert reasons["missing@10"] == "missing_file"
    assert reasons["empty@11"] == "empty_file"
    assert reasons["../secret@13"] == "path_escapes_root"
    assert reasons["text@12"] is None  # only found out when decoded
    assert set(checked["reason"].dropna()) <= set(REASONS)


def test_rows_in_equal_accepted_plus_rejected(tmp_path):
    csv, img_dir = _bad_cohort(tmp_path)
    checked = check_rows(read_rsna(csv, img_dir), img_dir)
    by_row = checked.set_index("row")
    verdicts = []
    for shard in cut_shards(checked, 3):
        verdicts.append(
            build_shard(
                by_row.loc[shard["rows"]].reset_index(),
                tmp_path / f"{shard['shard']}.zarr",
                16,
                shard["shard"],
            )
        )
    manifest = finalise(checked, verdicts)
    s = summarise(manifest)
    assert s["rows"] == 13 == s["accepted"] + s["rejected"]
    assert manifest.loc[manifest["id"] == "text", "reason"].item() == "unreadable_image"
    # 40 x 30 noise is too small to be a film: the QC verdict lands in the manifest too.
    assert set(manifest.loc[manifest["id"].isin(["1", "2", "3"]), "reason"]) == {"too_small"}
    assert sum(s["by_reason"].values()) == s["rejected"]


def test_cut_shards_follows_source_rows_and_digests_change_locally(tmp_path):
    n = 10
    checked = pd.DataFrame(
        {
            "row": range(1, n + 1),
            "id": [str(i) for i in range(n)],
            "sex": "M",
            "boneage": 100.0,
            "label_status": "exact",
            "true_boneage": float("nan"),
            "abspath": str(tmp_path / "x.png"),
            "status": ["accepted"] * n,
        }
    )
    checked.loc[checked["row"].isin([2, 10]), "status"] = "rejected"
    shards = cut_shards(checked, 4)
    assert [p["shard"] for p in shards] == ["s00000", "s00001", "s00002"]
    assert [p["rows"] for p in shards] == [[1, 3, 4], [5, 6, 7, 8], [9]]
    corrected = checked.copy()
    corrected.loc[corrected["row"] == 6, "boneage"] = 120.0  # a reviewer's update
    again = cut_shards(corrected, 4)
    changed = [a["shard"] for a, b in zip(shards, again) if a["digest"] != b["digest"]]
    assert changed == ["s00001"]


def test_truth_side_file_joins(tiny_cohort):
    rows = read_rsna(tiny_cohort / "labels.csv", tiny_cohort / "images", tiny_cohort / "truth.csv")
    assert rows["true_boneage"].notna().all()
    assert rows["patient"].str.startswith("P").all()


def test_summary_counts_inversions_of_accepted_images_only():
    manifest = pd.DataFrame(
        {
            "status": ["accepted", "accepted", "rejected", "rejected"],
            "reason": [None, None, "no_hand", "missing_file"],
            "inverted": [True, False, True, False],
        }
    )
    s = summarise(manifest)
    assert s == {
        "rows": 4,
        "accepted": 2,
        "rejected": 2,
        "inverted_corrected": 1,
        "by_reason": {"no_hand": 1, "missing_file": 1},
        "labels": {},
        "corrections": {},
    }


def test_each_shards_span_holds_its_rows_between_rejected_ones(tmp_path):
    csv, img_dir = _bad_cohort(tmp_path)
    checked = check_rows(read_rsna(csv, img_dir), img_dir)
    shards = cut_shards(checked, shard_size=3)
    lines = write_tsv_indexed(tmp_path / "rows.tsv", checked)
    add_spans(shards, checked["row"].to_numpy(), lines)
    dtype = tsv_dtypes(checked)
    table = read_tsv(tmp_path / "rows.tsv", dtype).set_index("row")
    for shard in shards:
        part = read_tsv_span(tmp_path / "rows.tsv", shard["span"], dtype).set_index("row")
        assert set(shard["rows"]) <= set(part.index)  # rejected rows may sit between
        pd.testing.assert_frame_equal(part.loc[shard["rows"]], table.loc[shard["rows"]])
    # No spans where lines are not rows, or rows are out of order: jobs read it all.
    for rows, given in (
        (checked["row"].to_numpy(), None),
        (checked["row"].to_numpy()[::-1], lines),
    ):
        bare = cut_shards(checked, shard_size=3)
        add_spans(bare, rows, given)
        assert all("span" not in s for s in bare)
