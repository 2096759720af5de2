"""scripts/setup.sh refuses what cannot work, before it changes anything, and says what to do."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from boneage.workflow_run import REPO


def _setup(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts/setup.sh"), "--no-apt"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _python(tmp_path: Path, version: str) -> Path:
    """A python that says it is ``version`` (and fails setup.sh's version checks accordingly)."""
    major, minor = (int(x) for x in version.split(".")[:2])
    fake = tmp_path / f"python{major}.{minor}"
    fake.write_text(
        "#!/bin/sh\n"
        f'case "$1" in --version) echo "Python {version}";; '
        f'-c) case "$2" in *"< (3, 11)"*) exit {int((major, minor) < (3, 11))};; '
        f"*) exit {int((major, minor) >= (3, 13))};; esac;; esac\n"
    )
    fake.chmod(0o755)
    return fake


def test_a_python_tensorflow_has_no_wheels_for_is_named_with_what_to_do(tmp_path):
    venv = tmp_path / "venv"
    for version, says in (("3.10.12", "is too old"), ("3.13.1", "is too new")):
        env = {**os.environ, "PYTHON": str(_python(tmp_path, version)), "BONEAGE_VENV": str(venv)}
        proc = _setup(env)
        assert proc.returncode == 1, proc.stderr
        assert f"Python {version} {says}" in proc.stderr
        assert "PYTHON=/path/to/python3.11" in proc.stderr
    assert not venv.exists()  # nothing made


def test_missing_compiler_is_named(tmp_path):
    """Without any C++ compiler the set-up stops at once and says what to load or install."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in Path("/usr/bin").iterdir():
        if not any(c in prog.name for c in ("g++", "c++", "clang")):
            (bindir / prog.name).symlink_to(prog)
    env = {"HOME": str(tmp_path), "PATH": str(bindir), "LANG": "C.UTF-8"}
    proc = _setup(env)
    assert proc.returncode == 1
    assert "no C++ compiler found" in proc.stderr and "module load gcc" in proc.stderr
