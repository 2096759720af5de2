"""Open the report in headless Chromium: no console errors, every image loads, tables present."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import _fake_results

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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/setup.sh --test)")
def test_report_in_headless_chromium(tmp_path):
    _fake_results(tmp_path / "results")
    report = tmp_path / "report.html"
    build_report(tmp_path / "results", tmp_path / "benchmarks", json.dumps({}), report)

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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/setup.sh --test)")
def test_the_check_catches_a_broken_image(tmp_path):
    _fake_results(tmp_path / "results")
    report = tmp_path / "report.html"
    build_report(tmp_path / "results", tmp_path / "benchmarks", json.dumps({}), report)
    html = report.read_text().replace(
        '<h2 id="overview">',
        '<img src="data:image/png;base64,AAAA" alt="bad"><h2 id="overview">',
        1,
    )
    report.write_text(html)
    dom = _chromium(report, tmp_path / "profile", "--dump-dom")
    assert 'data-images-ok="false"' in dom.stdout
    assert any("image failed to load: bad" in line for line in _console(dom.stderr))
