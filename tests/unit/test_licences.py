"""What is installed: the versions CI tested (requirements.lock), and their licences stated."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from boneage.workflow_run import REPO


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    return pins


def test_the_venv_holds_exactly_the_locked_versions():
    pins = _locked()
    assert len(pins) > 50 and "tensorflow-cpu" in pins and "pylibjpeg-libjpeg" not in pins
    wrong = {n: (v, metadata.version(n)) for n, v in pins.items() if metadata.version(n) != v}
    assert not wrong, f"installed differs from requirements.lock: {wrong}"


def test_the_lock_pins_every_requirement_within_its_range():
    from packaging.requirements import Requirement

    pins = {n.lower(): v for n, v in _locked().items()}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            assert req.name.lower() in pins, req.name
            assert req.specifier.contains(pins[req.name.lower()]), (req, pins[req.name.lower()])


def test_the_licence_page_is_current_and_lists_no_gpl():
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts/licences.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    page = (REPO / "docs/licences.md").read_text()
    assert "GPL among them: none." in page
    for name in ("tensorflow-cpu", "snakemake", "pydicom", "python-gdcm", "horovod"):
        assert f"| {name} |" in page.lower(), name
