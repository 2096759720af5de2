"""Run this repository's Snakemake workflow in a folder, with a profile, as a user types it.

The one way tests and benches start the workflow (``snakemake -s Snakefile
--profile P ...`` in the run folder, with the venv's tools on ``PATH``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: The repository checkout this package is installed from (editable install).
REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
#: Jobs on a test cluster take seconds, not hours, and it has no slurmdbd: poll soon, via squeue.
SLURM_POLL = ["--slurm-init-seconds-before-status-checks", "2", "--slurm-status-command", "squeue"]


class ProfileMissing(RuntimeError):
    """A named profile (``slurm``, ``dgx``) is not where Snakemake looks for profiles."""


def tool_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) with this Python's tools first on PATH."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def snakemake_cmd(profile: str = "local", cores: int | None = 2) -> list[str]:
    """The command line: ``local`` is the repository's profile folder; other profiles
    (``slurm``, ``dgx``) are found by name, as ``scripts/setup.sh`` links them for users."""
    if not SNAKEFILE.exists():
        raise FileNotFoundError(f"{SNAKEFILE} not found: boneage must be installed from a checkout")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
    if profile == "local":
        cmd += ["--profile", str(REPO / "profiles" / "local")]
        if cores:
            cmd += ["--cores", str(cores)]
    else:
        cmd += ["--profile", profile]
    if profile == "slurm":
        cmd += SLURM_POLL
    return cmd


def snakemake(
    workdir: Path,
    *args: str,
    profile: str = "local",
    cores: int | None = 2,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 1200,
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir``; the finished process, output captured (not checked)."""
    proc = subprocess.run(
        [*snakemake_cmd(profile, cores), *args],
        cwd=workdir,
        env=tool_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if (
        profile != "local"
        and proc.returncode
        and re.search(r"profile.*(not found|no profile)", proc.stderr, re.I | re.S)
    ):
        raise ProfileMissing(f"profile {profile!r} not found: scripts/setup.sh links the profiles")
    return proc


def tail(proc: subprocess.CompletedProcess, chars: int = 3000) -> str:
    """The end of a run's output, for an assertion message."""
    return (proc.stdout or "")[-chars:] + (proc.stderr or "")[-chars:]
