"""Open the report in headless Chromium: no console errors, every image loads, tables present.

The last test opens a report that the workflow itself built and clicks in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import browser
import pytest
from conftest import need
from harness import FAKE_RUN, fake_results
from selenium.webdriver.common.by import By

from boneage.report.build import build_report

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_in_headless_chromium(tmp_path):
    need(CHROMIUM is not None, "chromium")
    fake_results(tmp_path / "results")
    report = tmp_path / "report.html"
    build_report(tmp_path / "results", tmp_path / "benchmarks", json.dumps(FAKE_RUN), report)

    dom = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == [], _console(dom.stderr)
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    assert 'data-images-ok="true"' in body
    assert int(re.search(r'data-images="(\d+)"', body).group(1)) >= 5
    for table in ("cohorts-table", "overview-table", "experiments-table", "cross-cohort", "steps"):
        assert f'id="{table}"' in dom.stdout, table

    shot = tmp_path / "report.png"
    done = _chromium(
        report, tmp_path / "profile2", "--window-size=1280,3000", f"--screenshot={shot}"
    )
    assert done.returncode == 0 and shot.stat().st_size > 20_000
    keep = os.environ.get("BONEAGE_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
    print(f"screenshot: {shot}")


def test_the_check_catches_a_broken_image(tmp_path):
    need(CHROMIUM is not None, "chromium")
    fake_results(tmp_path / "results")
    report = tmp_path / "report.html"
    build_report(tmp_path / "results", tmp_path / "benchmarks", json.dumps(FAKE_RUN), report)
    html = report.read_text().replace(
        '<h2 id="overview">',
        '<img src="data:image/png;base64,AAAA" alt="bad"><h2 id="overview">',
        1,
    )
    report.write_text(html)
    dom = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert 'data-images-ok="false"' in dom.stdout
    assert any("image failed to load: bad" in line for line in _console(dom.stderr))


@pytest.mark.slow
def test_workflow_report_images_and_sorting(workflow_report, tmp_path):
    """Every image loads; the model card reads right; a header click sorts both ways."""
    driver = browser.chromium(tmp_path / "downloads", tmp_path / "profile")
    try:
        driver.get(workflow_report.resolve().as_uri())
        body = driver.find_element(By.TAG_NAME, "body")
        assert body.get_attribute("data-images-ok") == "true", browser.console(driver)
        kinds = {
            "review": len(driver.find_elements(By.CSS_SELECTOR, "table.review img.thumb")),
            "qc": len(driver.find_elements(By.CSS_SELECTOR, ".gallery img.thumb")),
            "saliency": len(driver.find_elements(By.CSS_SELECTOR, "img.example")),
        }
        assert all(n > 0 for n in kinds.values()), kinds
        assert int(body.get_attribute("data-images")) >= sum(kinds.values())
        errors = [m for m in browser.console(driver) if "SEVERE" in m or "error" in m.lower()]
        assert errors == []
        card = driver.find_element(By.ID, "card-quick")  # the model card of the experiment
        counts = card.find_elements(By.CSS_SELECTOR, "table.card-data tr")[1].text.split()[1:]
        assert sum(map(int, counts)) > 0 and "Intended use" in card.text
        assert "tiny" in card.find_element(By.CSS_SELECTOR, "table.card-scores").text

        table = driver.find_element(By.CSS_SELECTOR, "table.review")
        shown = _rows(table)
        header = table.find_elements(By.CSS_SELECTOR, "thead th")[5]  # difference
        for order in (1, -1):  # first click ascending, second descending
            header.click()
            diffs = [int(r["diff"]) for r in _rows(table)]
            assert diffs == sorted(diffs, key=lambda d: order * d), diffs
        assert sorted(r["id"] for r in _rows(table)) == sorted(r["id"] for r in shown)
    finally:
        driver.quit()


def _rows(table) -> list[dict[str, str]]:
    """The review table's rows as shown: id, label and prediction (months), difference."""
    rows = []
    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        rows.append(
            {
                "id": cells[1],
                "label": cells[3].split()[0],
                "pred": cells[4].split()[0],
                "diff": cells[5],
            }
        )
    return rows
