"""Every cohort source: RSNA layouts, hospital sheets, DICOM folders; privacy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import write_png
from dicom_helpers import (
    IDENTIFYING,
    to_jpeg_lossless,
    write_dicom,
    write_jpeg_dicom,
    write_undecodable,
)
from PIL import Image

from boneage.imageio import DecodeError, decode, is_dicom
from boneage.manifest import build_manifest, check_rows
from boneage.qc import check
from boneage.sources import read_source
from boneage.sources.dicom import age_months
from boneage.synth.cohort import render_study, sample_studies


def _hand(seed: int = 0, inverted: bool = False) -> np.ndarray:
    study = next(s for s in sample_studies(50, seed) if s.kind == "hand")
    img = render_study(study, seed)
    return 255 - img if inverted else img


def test_rsna_validation_layout_nested_folders_and_bit_depths(tmp_path):
    root = tmp_path / "images"
    (root / "a" / "b").mkdir(parents=True)
    img = _hand()
    write_png(root / "a" / "1386.png", img)
    write_png(root / "a" / "b" / "1387.png", img.astype(np.uint16) * 257)  # 16-bit
    Image.fromarray(img).convert("P").save(root / "1388.png")  # palette
    csv = tmp_path / "val.csv"
    csv.write_text("Image ID,male,Bone Age (months)\n1386,False,30\n1387,True,94\n1388,True,120\n")
    rows, base = read_source({"source": "rsna", "csv": str(csv), "images": str(root)})
    assert list(rows["path"]) == ["a/1386.png", "a/b/1387.png", "1388.png"]
    assert list(rows["sex"]) == ["F", "M", "M"] and list(rows["boneage"]) == [30, 94, 120]
    checked = check_rows(rows, base)
    for path in checked["abspath"]:
        assert check(decode(path)).is_hand


def test_rsna_test_layout_with_ground_truth(tmp_path):
    (tmp_path / "img").mkdir()
    write_png(tmp_path / "img" / "4360.png", _hand())
    (tmp_path / "test.csv").write_text("Case ID,Sex\n4360,M\n4361,F\n")
    (tmp_path / "gt.csv").write_text(
        "Case ID,Sex,Ground truth bone age (months)\n4360,M,168.934249\n4361,F,169.652678\n"
    )
    rows, _ = read_source(
        {
            "source": "rsna",
            "csv": str(tmp_path / "test.csv"),
            "images": str(tmp_path / "img"),
            "ground_truth": str(tmp_path / "gt.csv"),
        }
    )
    assert rows["boneage"].round(3).tolist() == [168.934, 169.653]
    assert list(rows["sex"]) == ["M", "F"] and list(rows["label_status"]) == ["exact"] * 2


def test_rsna_wrong_header_is_named(tmp_path):
    (tmp_path / "x.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(ValueError, match="not an RSNA CSV"):
        read_source({"source": "rsna", "csv": str(tmp_path / "x.csv"), "images": str(tmp_path)})


def _sheet(tmp_path, suffix=".xlsx"):
    (tmp_path / "img").mkdir()
    cells = ["16", "12-13", "-- 8-9", "--15.5-\n16", "13 +", "N/A", ":", "", "(2009/09/24)", "13.5"]
    for i in range(len(cells)):
        write_png(tmp_path / "img" / f"H{i:03d}.png", _hand(i % 3))
    table = pd.DataFrame(
        {
            "Study no.": [f"H{i:03d}" for i in range(len(cells))],
            "BA (years)": cells,
            "Gender": ["M", "F"] * 5,
        }
    )
    path = tmp_path / f"labels{suffix}"
    if suffix == ".xlsx":
        table.to_excel(path, index=False)
    else:
        table.to_csv(path, index=False)
    return {
        "source": "spreadsheet",
        "table": str(path),
        "images": str(tmp_path / "img"),
        "label_unit": "years",
        "columns": {"id": "Study no.", "boneage": "BA (years)", "sex": "Gender"},
    }


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_hospital_sheet_labels(tmp_path, suffix):
    spec = _sheet(tmp_path, suffix)
    checked, plan, _ = build_manifest(spec, shard_size=4)
    assert checked["label_status"].tolist() == [
        "exact",
        "range",
        "range",
        "range",
        "censored",
        "missing",
        "missing",
        "missing",
        "unparseable",
        "exact",
    ]
    assert checked["boneage"].iloc[:5].tolist() == [192, 150, 102, 189, 156]  # months
    assert checked["label_raw"].iloc[3] == "--15.5-\n16"
    reasons = checked["reason"].tolist()
    assert reasons[5:9] == ["missing_label"] * 3 + ["unparseable_label"]
    assert reasons[4] is None  # censored rows are kept (not trained on by default)
    assert sum(len(p["rows"]) for p in plan) == 6


def test_sheet_missing_column_is_named(tmp_path):
    spec = _sheet(tmp_path, ".csv")
    spec["columns"]["sex"] = "Sex"
    with pytest.raises(ValueError, match="'Sex'"):
        read_source(spec)


@pytest.fixture(autouse=True)
def site_salt(monkeypatch):
    """The DICOM cohorts here name their salt as a site does: an environment variable."""
    monkeypatch.setenv("BONEAGE_TEST_SALT", "s")


@pytest.fixture
def dicom_folder(tmp_path):
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    root = tmp_path / "pacs"
    (root / "2022" / "03").mkdir(parents=True)
    img = _hand(1).astype(np.uint16) * 16  # 12-bit
    write_dicom(root / "plain.dcm", img, PatientAge="010Y")
    # MONOCHROME1: stored inverted, with a rescale and a window: must come out upright.
    write_dicom(
        root / "2022" / "mono1.dcm",
        4095 - img,
        photometric="MONOCHROME1",
        slope=2.0,
        intercept=-1000.0,
        window=(3000.0, 8000.0),
        PatientAge=None,
        PatientSex="M",
    )
    write_dicom(root / "2022" / "03" / "rle.dcm", img, syntax=RLELossless, PatientAge="006M")
    write_dicom(root / "j2k.dcm", img, syntax=JPEG2000Lossless, PatientAge="120W")
    write_dicom(root / "jls.dcm", img, syntax=JPEGLSLossless, PatientAge="010Y")
    write_undecodable(root / "mpeg2.dcm")
    (root / "broken.dcm").write_bytes(b"\x00" * 300)
    (root / "README.txt").write_text("export notes")
    return root


def test_dicom_rows_decode_and_age(dicom_folder):
    rows, base = read_source(
        {"source": "dicom", "folder": str(dicom_folder), "salt_env": "BONEAGE_TEST_SALT"}
    )
    assert len(rows) == 7  # README.txt is not a row; broken.dcm is
    by_path = rows.set_index("path")
    assert by_path.loc["plain.dcm", "chrono_age"] == 120
    assert by_path.loc["2022/mono1.dcm", "chrono_age"] == pytest.approx(144, abs=0.5)  # dates
    assert by_path.loc["2022/03/rle.dcm", "chrono_age"] == 6
    assert by_path.loc["2022/mono1.dcm", "sex"] == "M"
    assert by_path.loc["broken.dcm", "error"] == "unreadable_image"
    assert (rows["label_status"] == "unlabelled").all()
    reference = decode(dicom_folder / "plain.dcm")
    for name in ("2022/mono1.dcm", "2022/03/rle.dcm", "j2k.dcm", "jls.dcm"):
        img = decode(dicom_folder / name)
        verdict = check(img)
        assert verdict.is_hand and not verdict.inverted, name
        assert np.corrcoef(img.ravel(), reference.ravel())[0, 1] > 0.98, name
    with pytest.raises(DecodeError) as info:
        decode(dicom_folder / "mpeg2.dcm")
    assert info.value.reason == "unsupported_compression"
    assert is_dicom(dicom_folder / "plain.dcm") and not is_dicom(dicom_folder / "broken.dcm")


def test_baseline_jpeg_dicom_decodes_as_the_jpeg_itself(tmp_path):
    """A lossy JPEG-baseline export decodes to the picture Pillow reads from the same JPEG."""
    import io

    from PIL import Image

    jpeg = write_jpeg_dicom(tmp_path / "jpeg.dcm", _hand(4), PatientSex="M")
    truth = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), np.float64)
    img = decode(tmp_path / "jpeg.dcm").astype(np.float64)
    assert img.shape == truth.shape
    assert np.corrcoef(img.ravel(), truth.ravel())[0, 1] > 0.999
    assert check(decode(tmp_path / "jpeg.dcm")).is_hand


def test_jpeg_lossless_dicom_decodes_to_the_uncompressed_pixels(tmp_path):
    """JPEG lossless (process 14) through the default decoders (no GPL decoder installed)."""
    plain = write_dicom(tmp_path / "plain.dcm", _hand(5).astype(np.uint16) * 16)
    lossless = to_jpeg_lossless(plain, tmp_path / "lossless.dcm")
    import pydicom

    assert pydicom.dcmread(lossless).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    np.testing.assert_array_equal(decode(lossless), decode(plain))


def test_dicom_identifiers_never_leave(dicom_folder, tmp_path):
    from boneage.atomic import write_tsv
    from boneage.shards import build_shard

    checked, plan, _ = build_manifest(
        {"source": "dicom", "folder": str(dicom_folder), "salt_env": "BONEAGE_TEST_SALT"}, 10
    )
    write_tsv(tmp_path / "rows.tsv", checked)
    by_row = checked.set_index("row")
    verdicts = build_shard(
        by_row.loc[plan[0]["rows"]].reset_index(), tmp_path / "s.zarr", 32, "s00000"
    )
    assert set(verdicts.loc[verdicts["status"] == "rejected", "reason"]) == {
        "unsupported_compression"
    }
    blobs = [(tmp_path / "rows.tsv").read_text()]
    blobs += [
        p.read_bytes().decode("latin-1") for p in (tmp_path / "s.zarr").rglob("*") if p.is_file()
    ]
    for value in IDENTIFYING.values():
        assert all(value not in b for b in blobs), value
    assert checked["id"].str.match(r"^S[0-9a-f]{16}$").all()


def test_dicom_labels_join_on_configured_id(dicom_folder, tmp_path):
    (tmp_path / "ba.csv").write_text("Accession,BA\nACC-0815,11-12\n")
    rows, _ = read_source(
        {
            "source": "dicom",
            "folder": str(dicom_folder),
            "pseudonymize": False,
            "id_field": "AccessionNumber",
            "labels": {
                "table": str(tmp_path / "ba.csv"),
                "columns": {"id": "Accession", "boneage": "BA"},
            },
        }
    )
    readable = rows[rows["error"].isna()]
    assert (readable["id"] == "ACC-0815").all()  # configured as the id, so it may be kept
    assert (readable["boneage"] == 138).all() and (readable["label_status"] == "range").all()


def test_a_dicom_without_the_configured_id_is_rejected_as_missing_id(tmp_path):
    root = tmp_path / "pacs"
    root.mkdir()
    write_dicom(root / "with.dcm", _hand(1).astype(np.uint16) * 16, AccessionNumber="A1")
    write_dicom(root / "without.dcm", _hand(2).astype(np.uint16) * 16, AccessionNumber=None)
    spec = {
        "source": "dicom",
        "folder": str(root),
        "id_field": "AccessionNumber",
        "salt_env": "BONEAGE_TEST_SALT",
    }
    checked, _, _ = build_manifest(spec, 10)
    assert checked.set_index("path")["reason"].to_dict() == {
        "with.dcm": None,
        "without.dcm": "missing_id",
    }


@pytest.mark.parametrize(("unit", "months"), [("months", [30.0, 126.5]), ("years", [360, 1518])])
def test_sheet_age_unit(tmp_path, unit, months):
    """`age_unit` says what the sheet's age column counts (decimal commas allowed)."""
    spec = _sheet(tmp_path, ".csv")
    table = pd.read_csv(spec["table"], dtype=str).iloc[:2]
    table["Age"] = ["30", "126,5"]
    table.to_csv(spec["table"], index=False)
    spec["columns"]["age"] = "Age"
    rows, _ = read_source({**spec, "age_unit": unit})
    assert rows["chrono_age"].tolist() == pytest.approx(months)


def test_age_from_patient_age_units():
    class DS:
        PatientAge = "030W"

    assert age_months(DS()) == pytest.approx(30 / (30.4375 / 7), abs=0.01)


@pytest.mark.parametrize("syntax", [None, "RLELossless"])
def test_truncated_dicom_is_named_even_when_its_id_repeats(tmp_path, syntax):
    """A file cut short by a failed transfer: `truncated`, not a `duplicate_id` of the good one."""
    import pydicom.uid

    root = tmp_path / "pacs"
    root.mkdir()
    uid = pydicom.uid.generate_uid()
    write_dicom(
        root / "a.dcm",
        _hand(2).astype(np.uint16) * 16,
        StudyInstanceUID=uid,
        syntax=getattr(pydicom.uid, syntax) if syntax else None,
    )
    good = (root / "a.dcm").read_bytes()
    (root / "b.dcm").write_bytes(good[: len(good) - 200])
    checked, _, _ = build_manifest(
        {"source": "dicom", "folder": str(root), "salt_env": "BONEAGE_TEST_SALT"}, 10
    )
    assert checked.set_index("path")["reason"].to_dict() == {"a.dcm": None, "b.dcm": "truncated"}
    with pytest.raises(DecodeError) as info:
        decode(root / "b.dcm")
    assert info.value.reason == "truncated"


def test_dicom_rows_keep_body_part_and_modality(tmp_path):
    root = tmp_path / "pacs"
    root.mkdir()
    write_dicom(root / "hand.dcm", _hand(3).astype(np.uint16) * 16, BodyPartExamined="HAND")
    write_dicom(root / "mr.dcm", _hand(3).astype(np.uint16) * 16, Modality="MR")
    rows, _ = read_source({"source": "dicom", "folder": str(root), "salt_env": "BONEAGE_TEST_SALT"})
    got = rows.set_index("path")[["body_part", "modality"]].to_dict("index")
    assert got == {
        "hand.dcm": {"body_part": "HAND", "modality": "DX"},
        "mr.dcm": {"body_part": "", "modality": "MR"},
    }
