"""A real one-node Slurm on localhost for the Slurm tests: munged, slurmctld, slurmd.

Debian's slurm-wlm and munge (installed by ``scripts/setup.sh --test``), with
a slurm.conf written for this host into a private folder: proctrack/linuxproc
and task/none (no cgroups needed), select/cons_tres with CR_Core_Memory (jobs
are packed by cores and memory), no accounting database (so ``squeue`` is the
status command), and jobacct_gather/linux with OverMemoryKill, which kills a
job step whose resident memory outgrows its request (the out-of-memory retry
test relies on it). Private ports keep it apart from any site Slurm.

The config is also written to /etc/slurm/slurm.conf, where Slurm's commands
look by default: the Slurm executor's job steps drop SLURM_* variables
(SLURM_CONF included) before they run ``srun``. An existing file there that
this module did not write is never touched (start fails instead); ours is
removed again by :func:`stop`.

Usage outside pytest, for debugging::

    python tests/localslurm.py start /tmp/slurm   # prints `export SLURM_CONF=...`
    python tests/localslurm.py stop /tmp/slurm
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "munged")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by boneage tests/localslurm.py\n"
CONF = (
    MARK
    + """\
ClusterName=boneagetest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={port}
SlurmdPort={dport}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
KillWait=5
MinJobAge=300
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
)


def missing() -> list[str]:
    """The Slurm and munge programs this machine lacks (empty when all are there)."""
    return [p for p in (*DAEMONS, "sbatch", "squeue", "srun", "scontrol") if not shutil.which(p)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, log: Path | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"local Slurm: {what} did not come up within {timeout:.0f} s\n{tail}")


def start(root: Path, cpus: int | None = None, mem_mb: int | None = None) -> dict[str, str]:
    """Start munged, slurmctld and slurmd under ``root``; return the environment to use them."""
    root = Path(root).resolve()
    for sub in ("munge", "state", "spool"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    mem_mb = mem_mb or int(total_mb * 0.8)
    text = CONF.format(
        host=host, root=root, cpus=cpus, mem=mem_mb, port=_free_port(), dport=_free_port()
    )
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARK):
        raise RuntimeError(
            f"{SYSTEM_CONF} exists and is not a test config: the Slurm tests "
            "will not overwrite a real Slurm's configuration"
        )
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.write_text(text)
    conf = root / "slurm.conf"
    conf.write_text(text)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    # munged refuses to run as root without --force; its key is Debian's /etc/munge/munge.key.
    subprocess.run(
        [
            "munged",
            "--force",
            f"--socket={root}/munge/munge.socket",
            f"--pid-file={root}/munge/munged.pid",
            f"--log-file={root}/munge/munged.log",
            f"--seed-file={root}/munge/munged.seed",
        ],
        check=True,
        env=env,
    )
    subprocess.run(["slurmctld", "-c", "-i", "-f", str(conf)], check=True, env=env)
    subprocess.run(["slurmd", "-c", "-f", str(conf)], check=True, env=env)

    def node_idle() -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=env
        )
        return out.returncode == 0 and out.stdout.strip().rstrip("*") in ("idle", "mixed")

    _wait(node_idle, "the node", root / "slurmd.log")
    return {"SLURM_CONF": str(conf)}


def stop(root: Path) -> None:
    """Cancel every job, stop the daemons (by their pid files) and wait until they are gone."""
    root = Path(root).resolve()
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    if shutil.which("scancel"):
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
    for pidfile in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
        path = root / pidfile
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.2)
    if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text().startswith(MARK):
        SYSTEM_CONF.unlink()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        env = start(Path(argv[1]))
        print(f"export SLURM_CONF={env['SLURM_CONF']}")
    else:
        stop(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
