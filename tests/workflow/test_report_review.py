"""Label review in the report, clicked in headless Chromium, fed back into the workflow.

A reviewer sets one Update (in years), one Delete and one Problematic in the
report the tiny workflow built, reloads the page (decisions survive), filters,
downloads the corrections file and sets it as the cohort's ``corrections:``.
The rerun re-shards exactly the shards holding those films, the manifest
carries the audit columns, the model changes and equals a clean run's of the
corrected config, and the new report keeps the decisions as earlier
corrections.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import browser
import pandas as pd
import pytest
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from boneage.corrections import COLUMNS, read_corrections
from boneage.workflow_run import snakemake

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REVIEWER, DAY = "Dr. Test, Radiology", "2026-05-01"


def _set(driver, element, value: str) -> None:
    """Set an input's value as a user would leave it (fires change)."""
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        element,
        value,
    )


def _row(driver, film: str):
    return driver.find_element(By.CSS_SELECTOR, f'table.review tr[data-id="{film}"]')


def _the_corrections_reached_the_model(before: Path, after: Path, clean: Path) -> None:
    """The rerun's model changed, and it is the model a clean run of the corrected config trains."""
    summary = "results/models/quick/train.json"
    old, new = (json.loads((run / summary).read_text()) for run in (before, after))
    assert new["model_digest"] != old["model_digest"]
    assert new["inputs"]["data"] != old["inputs"]["data"]
    clean.mkdir()
    (clean / "config.yaml").write_text((after / "config.yaml").read_text())
    proc = snakemake(clean)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((clean / summary).read_text())["model_digest"] == new["model_digest"]
    for table in ("predictions/quick/tiny.tsv", "metrics/quick/tiny.json"):
        assert (clean / "results" / table).read_bytes() == (after / "results" / table).read_bytes()


def _choose(work: Path, ids: list[str]) -> list[str]:
    """Three reviewed films from as few shards as leave at least one shard untouched."""
    manifest = pd.read_csv(work / "results/cohorts/tiny/manifest.tsv", sep="\t", dtype=str)
    shard = manifest.set_index("id")["shard"]
    by_shard: dict[str, list[str]] = {}
    for film in ids:
        by_shard.setdefault(shard[film], []).append(film)
    ranked = sorted(by_shard.values(), key=len, reverse=True)
    if len(ranked) > 2 and len(ranked[0]) >= 2:  # two films in one shard, one in another
        return ranked[0][:2] + ranked[1][:1]
    assert len(ranked[0]) >= 3, by_shard
    return ranked[0][:3]


@pytest.mark.heavy  # a second workflow run (80 s): the fast tier stays under 10 minutes
def test_review_clicks_build_the_corrections_file_for_the_next_run(workflow_report, tmp_path):
    work = tmp_path / "run"
    shutil.copytree(workflow_report.parents[1], work, symlinks=True)
    report = work / "results/report.html"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser.chromium(downloads, tmp_path / "profile")
    try:
        driver.get(report.resolve().as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "table.review tbody tr")
        assert len(rows) == 25  # report.review_cases' default
        ids = [r.get_attribute("data-id") for r in rows]
        update, delete, flag = _choose(work, ids)
        labels = {r.get_attribute("data-id"): r.get_attribute("data-note") for r in rows}

        # No decision without a reviewer's name.
        _row(driver, delete).find_element(By.CSS_SELECTOR, '[data-action="delete"]').click()
        assert "reviewer" in driver.find_element(By.ID, "review-status").text
        assert _row(driver, delete).find_element(By.CSS_SELECTOR, ".decision").text == ""

        _set(driver, driver.find_element(By.ID, "reviewer"), REVIEWER)
        _set(driver, driver.find_element(By.ID, "review-date"), DAY)
        row = _row(driver, update)
        age = row.find_element(By.CSS_SELECTOR, "input.age")
        age.send_keys("300")  # out of range: refused with a message
        row.find_element(By.CSS_SELECTOR, '[data-action="update"]').click()
        assert "0-240 months" in driver.find_element(By.ID, "review-status").text
        age.clear()
        age.send_keys("12.5")
        Select(row.find_element(By.CSS_SELECTOR, "select.unit")).select_by_value("years")
        row.find_element(By.CSS_SELECTOR, '[data-action="update"]').click()
        _row(driver, delete).find_element(By.CSS_SELECTOR, '[data-action="delete"]').click()
        row = _row(driver, flag)
        row.find_element(By.CSS_SELECTOR, "input.note").send_keys('motion blur, "re-take"')
        row.find_element(By.CSS_SELECTOR, '[data-action="problematic"]').click()

        # Decisions survive a reload.
        driver.refresh()
        assert driver.find_element(By.CSS_SELECTOR, ".decided").text == "3 decisions"
        assert "update to 150 mo" in _row(driver, update).text
        assert "delete (Dr. Test, Radiology, 2026-05-01)" in _row(driver, delete).text
        assert "did-problematic" in _row(driver, flag).get_attribute("class")

        # Filters: a subset shows only its rows; the cohort filter hides other cohorts.
        subset = _row(driver, update).get_attribute("data-subset")
        Select(driver.find_element(By.ID, "review-subset")).select_by_value(subset)
        visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "table.review tbody tr")]
        shown = {r.get_attribute("data-subset") for r in visible if r.is_displayed()}
        assert shown == {subset}
        Select(driver.find_element(By.ID, "review-subset")).select_by_value("")
        Select(driver.find_element(By.ID, "review-cohort")).select_by_value("tiny")
        assert driver.find_element(By.CSS_SELECTOR, "section.review-cohort").is_displayed()

        driver.find_element(By.CSS_SELECTOR, "button.download").click()
        sheet = browser.wait_for_file(downloads, "corrections-tiny.csv")
        got = pd.read_csv(sheet, dtype=str, keep_default_na=False)
        assert list(got.columns) == COLUMNS
        assert got.values.tolist() == [
            [update, "update", "150", REVIEWER, DAY, labels[update]],
            [delete, "delete", "", REVIEWER, DAY, labels[delete]],
            [flag, "problematic", "", REVIEWER, DAY, 'motion blur, "re-take"'],
        ]
        assert len(read_corrections(sheet)) == 3  # ingestion reads it as it is
    finally:
        driver.quit()

    # Set the file as the cohort's corrections and rerun the whole workflow.
    manifest = pd.read_csv(work / "results/cohorts/tiny/manifest.tsv", sep="\t", dtype=str)
    holding = set(manifest.set_index("id").loc[[update, delete, flag], "shard"])
    shards = work / "results/cohorts/tiny/shards"
    before = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    assert len(holding) < len(before)
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["cohorts"]["tiny"]["corrections"] = str(sheet)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in shards.iterdir()}
    assert {n.removesuffix(".zarr") for n in before if before[n] != after[n]} == holding

    manifest = pd.read_csv(work / "results/cohorts/tiny/manifest.tsv", sep="\t", dtype=str)
    audit = manifest.set_index("id")
    assert float(audit.at[update, "boneage"]) == 150.0
    assert (
        audit.at[update, "corrected_to"] == "150.0" and audit.at[update, "corrected_by"] == REVIEWER
    )
    assert audit.at[update, "corrected_on"] == DAY and audit.at[update, "correction"] == "update"
    assert audit.at[delete, "reason"] == "deleted_by_review"
    assert audit.at[flag, "reason"] == "flagged_by_review"
    _the_corrections_reached_the_model(workflow_report.parents[1], work, tmp_path / "clean")

    # The new report holds them as earlier corrections; the browser drops its copies.
    driver = browser.chromium(downloads, tmp_path / "profile")
    try:
        driver.get(report.resolve().as_uri())
        section = driver.find_element(By.CSS_SELECTOR, "section.review-cohort")
        assert "3 earlier correction(s)" in section.text
        assert section.find_element(By.CSS_SELECTOR, ".decided").text == "0 decisions"
        ids = [r.get_attribute("data-id") for r in section.find_elements(By.TAG_NAME, "tr")]
        assert delete not in ids and flag not in ids
    finally:
        driver.quit()
