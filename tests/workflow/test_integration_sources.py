"""Every source kind in one config, through the whole DAG to results/report.html.

RSNA training, validation and test layouts, a hospital spreadsheet as xlsx
(ids, column names and the image pattern full of braces, quotes and HTML)
and as csv (the real hand films and their messy label sheet), a DICOM folder
with a labels table, and a synthetic cohort that trains the model.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REAL_SHEET, write_png
from dicom_helpers import IDENTIFYING, write_dicom
from harness import TINY
from report_truth import check_metrics, check_rejections

from boneage.synth.cohort import render_study, sample_studies
from boneage.workflow_run import snakemake

pytestmark = [pytest.mark.slow, pytest.mark.heavy]  # minutes: the heavy tier

#: The DICOM export: its folder and file names hold a patient's name; the site's salt.
PACS_FOLDER = "PACS-export-Doe^Jane"
ACCESSIONS = ["ACC-1", "ACC-2", "ACC-3", "ACC-4"]
SALT = "site secret 7f3a"
TITLE = 'All sources <b>{id}</b> "quoted" {cohort}'
# Spreadsheet ids a hospital might type, with the image each names.
ODD_IDS = {"BA{1}": "a.png", "q\"uote's": "b.png", "<script>alert(1)</script>": "c.png"}
ODD_COLUMNS = {
    "id": "Study {no.}",
    "boneage": 'BA "years"',
    "sex": "<Gender>",
    "image": "File {name}",
}


def _hands(seed: int):
    return (render_study(s, seed) for s in sample_studies(80, seed) if s.kind == "hand")


def _rsna_layouts(root, hands) -> dict:
    """Three RSNA folders: training, validation and test (with its ground-truth file)."""
    cohorts = {}
    tables = {
        "train": ("id,boneage,male", [("1377", "180", "False"), ("1378", "12", "True")]),
        "validation": (
            "Image ID,male,Bone Age (months)",
            [("1386", "TRUE", "30"), ("1392", "FALSE", "162")],
        ),
        "test": ("Case ID,Sex", [("4360", "M"), ("4361", "F")]),
    }
    for layout, (header, rows) in tables.items():
        folder = root / f"rsna_{layout}"
        (folder / "images").mkdir(parents=True)
        for row in rows:
            write_png(folder / "images" / f"{row[0]}.png", next(hands))
        (folder / "labels.csv").write_text("\n".join([header] + [",".join(r) for r in rows]))
        cohorts[f"rsna_{layout}"] = {
            "source": "rsna",
            "csv": str(folder / "labels.csv"),
            "images": str(folder / "images"),
        }
    gt = root / "rsna_test/gt.csv"
    gt.write_text("Case ID,Sex,Ground truth bone age (months)\n4360,M,168.93\n4361,F,36.5\n")
    cohorts["rsna_test"]["ground_truth"] = str(gt)
    return cohorts


def _odd_sheet(root, hands) -> dict:
    """An xlsx sheet whose ids, column names and pattern hold braces, quotes and HTML."""
    folder = root / "sheet {x}"
    (folder / "export").mkdir(parents=True)
    for name in ODD_IDS.values():
        write_png(folder / "export" / name, next(hands))
    table = pd.DataFrame(
        {
            ODD_COLUMNS["id"]: list(ODD_IDS),
            ODD_COLUMNS["boneage"]: ["8", "9-10", "12 +"],
            ODD_COLUMNS["sex"]: ["F", "M", "F"],
            ODD_COLUMNS["image"]: list(ODD_IDS.values()),
        }
    )
    table.to_excel(folder / "labels.xlsx", index=False)
    return {
        "source": "spreadsheet",
        "table": str(folder / "labels.xlsx"),
        "images": str(folder / "export"),
        "columns": ODD_COLUMNS,
        "label_unit": "years",
    }


def _pacs(root, hands) -> dict:
    """A DICOM export: three hands, a chest-tagged film, a truncated copy of a good file."""
    folder = root / PACS_FOLDER
    folder.mkdir()
    accessions = ACCESSIONS[:3]
    for k, acc in enumerate(accessions):
        write_dicom(
            folder / f"DOE_JANE_{k}.dcm",
            next(hands).astype(np.uint16) * 16,
            AccessionNumber=acc,
            PatientAge=f"{8 + k:03d}Y",
        )
    write_dicom(
        folder / "DOE_JANE_chest.dcm",
        next(hands).astype(np.uint16) * 16,
        AccessionNumber=ACCESSIONS[3],
        BodyPartExamined="CHEST",
    )
    good = (folder / "DOE_JANE_0.dcm").read_bytes()
    (folder / "DOE_JANE_0_copy.dcm").write_bytes(good[: len(good) // 2])  # same id, cut short
    labels = root / "ba.csv"
    labels.write_text("Accession,BA\nACC-1,8\nACC-2,9.5\nACC-3,10\nACC-4,11\n")
    return {
        "source": "dicom",
        "folder": str(folder),
        "id_field": "AccessionNumber",
        "salt_env": "BONEAGE_TEST_SALT",  # set to SALT by the test, as a site exports it
        "labels": {"table": str(labels), "columns": {"id": "Accession", "boneage": "BA"}},
    }


def test_every_source_kind_through_the_whole_dag(tmp_path, real_hands, monkeypatch):
    monkeypatch.setenv("BONEAGE_TEST_SALT", SALT)
    hands = _hands(8)
    cohorts = {
        **TINY["cohorts"],
        **_rsna_layouts(tmp_path, hands),
        "sheet_xlsx": _odd_sheet(tmp_path, hands),
        "pacs": _pacs(tmp_path, hands),
        "hospital": {
            "source": "spreadsheet",
            "table": str(REAL_SHEET),
            "images": str(real_hands[0].parent),
            "label_unit": "years",
            "image_pattern": "{id}.png",
            "columns": {
                "id": "Study no.",
                "boneage": "BA (years)",
                "sex": "Gender",
                "age": "Age (years)",
            },
        },
    }
    config = {
        **TINY,
        "cohorts": cohorts,
        "report": {"title": TITLE},
        "shards": {"format": "zarr", "size": 8},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = tmp_path / "results"
    page = (res / "report.html").read_text()

    # The report shows every cohort, its figures equal to the data's, and the title as
    # typed (escaped, not interpreted).
    for name in cohorts:
        check_metrics(res, "quick", name, trained_on_cohort=name in config["train_cohorts"])
        check_rejections(res, name)
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title and html.unescape(title.group(1)) == TITLE
    assert "<script>alert(1)</script>" not in page

    # The steps read the resolved config from files: every odd value is intact there.
    resolved = json.loads((res / "config/run.json").read_text())
    assert resolved["report"]["title"] == TITLE
    assert resolved["cohorts"]["sheet_xlsx"]["columns"] == ODD_COLUMNS

    # Odd spreadsheet ids survive to the predictions, labels parsed from years.
    sheet = pd.read_csv(
        res / "predictions/quick/sheet_xlsx.tsv", sep="\t", dtype={"id": str}, keep_default_na=False
    )
    assert sorted(sheet["id"]) == sorted(ODD_IDS)
    assert sorted(sheet["boneage"].round(1)) == [96.0, 114.0, 144.0]  # years -> months
    statuses = sheet.set_index("id")["label_status"]
    assert statuses["<script>alert(1)</script>"] == "censored"
    # RSNA: validation labels in months, test labels from the ground-truth file.
    val = pd.read_csv(res / "predictions/quick/rsna_validation.tsv", sep="\t", dtype={"id": str})
    assert dict(zip(val["id"], val["boneage"])) == {"1386": 30.0, "1392": 162.0}
    test = pd.read_csv(res / "predictions/quick/rsna_test.tsv", sep="\t", dtype={"id": str})
    assert dict(zip(test["id"], test["boneage"].round(2))) == {"4360": 168.93, "4361": 36.5}

    # The real films: the hands with usable labels are predicted, in months.
    hospital = pd.read_csv(res / "cohorts/hospital/manifest.tsv", sep="\t", dtype={"id": str})
    accepted = set(hospital.loc[hospital["status"] == "accepted", "id"])
    assert accepted == {"0", "1", "3", "5", "6", "7", "9"}  # 2, 8: missing; 4: a date
    assert hospital.loc[hospital["id"] == "0", "qc"].item().startswith("fingers")
    # Chronological age from the sheet's age column (years) and the DICOM PatientAge:
    # the report compares bone age with it for those two cohorts.
    assert hospital.set_index("id").loc["0", "chrono_age"] == pytest.approx(12.4 * 12)
    chrono = page.split('id="chrono"')[1].split('id="qc"')[0]
    assert "<h3>hospital" in chrono and "<h3>pacs" in chrono and "<h3>tiny" not in chrono

    # DICOM: the broken copy is `truncated` (not hidden as a duplicate), the chest tag
    # rejects with its rule; results name each file by its pseudonym, HMAC-SHA-256 of its
    # path keyed by the salt (worked out here), and only private/ maps it back to the file.
    pacs = pd.read_csv(res / "cohorts/pacs/manifest.tsv", sep="\t", keep_default_na=False)
    reasons = pacs.set_index("path")["reason"].to_dict()
    assert reasons[_file_pseudonym("DOE_JANE_0_copy.dcm")] == "truncated"
    assert reasons[_file_pseudonym("DOE_JANE_chest.dcm")] == "no_hand"
    assert pacs.set_index("path").loc[_file_pseudonym("DOE_JANE_chest.dcm"), "qc"] == (
        "BodyPartExamined CHEST"
    )
    assert sum(r == "NA" for r in reasons.values()) == 3  # the three hands accepted
    private = pd.read_csv(tmp_path / "private/cohorts/pacs/rows.tsv", sep="\t")
    assert set(private["path"]) == {f"DOE_JANE_{k}.dcm" for k in (0, 1, 2, "0_copy", "chest")}
    assert_nothing_identifies(tmp_path, [*IDENTIFYING.values(), *ACCESSIONS, "DOE_JANE"])


def _file_pseudonym(name: str) -> str:
    return "F" + hmac.new(SALT.encode(), name.encode(), hashlib.sha256).hexdigest()[:16]


def assert_nothing_identifies(work: Path, secrets: list[str]) -> None:
    """No file a run writes outside private/ (results, logs, benchmarks, Snakemake's logs
    and records of each job) holds an identifying value, a file or folder name of the
    DICOM export, or the salt: as text or anywhere in a binary file."""
    needles = [s.encode() for s in (*secrets, PACS_FOLDER, SALT)]
    folders = ("results", "logs", "benchmarks", ".snakemake/log", ".snakemake/metadata")
    files = [p for f in folders for p in (work / f).rglob("*") if p.is_file()]
    assert len(files) > 100
    for path in files:
        data = path.read_bytes()
        found = [n.decode() for n in needles if n in data]
        assert not found, f"{path.relative_to(work)} holds {found}"
    # The salt is nowhere in the run folder: not in private/, not in .snakemake/.
    for path in (p for p in work.rglob("*") if p.is_file()):
        assert SALT.encode() not in path.read_bytes(), path.relative_to(work)
