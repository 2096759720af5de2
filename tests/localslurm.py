"""A real Slurm on this machine for the Slurm tests: munged, slurmctld, slurmd(s).

One node (:func:`start`): slurmd on this host. Several nodes (:func:`start`
with ``nodes=2``): each slurmd runs as its own host, in its own network, UTS
and mount namespace (``ip netns``; hostname ``node1``, ``node2``, ...), with
its own address on a private bridge (10.77.0.0/24, slurmctld at 10.77.0.1)
and its own spool, pid and log files. The file system is shared, as on a
cluster; each node sees its own /etc/hosts (``/etc/netns/<ns>/hosts``).
Needs root (the tests run as root in CI).

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

    python tests/localslurm.py start /tmp/slurm [NODES]  # prints `export SLURM_CONF=...`
    python tests/localslurm.py stop /tmp/slurm
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "munged")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by boneage tests/localslurm.py\n"
CONF = (
    MARK
    + """\
ClusterName=boneagetest
SlurmctldHost={host}({ctl_addr})
SlurmctldPort={port}
SlurmdPort={dport}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
TmpFS={root}/nodetmp
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
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
SlurmdTimeout=10
JobRequeue=0
{nodes}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
)
NODE = "NodeName={name} NodeAddr={addr} CPUs={cpus} RealMemory={mem} State=UNKNOWN"
NET = "10.77.0"  # the private network of namespaced nodes: .1 is this host, .11 node1, ...
BRIDGE = "boneage-br0"


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


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def node_names(root: Path) -> list[str]:
    """The namespaced nodes a cluster under ``root`` has (empty for a one-node cluster)."""
    path = Path(root) / "nodes"
    return path.read_text().split() if path.exists() else []


def _namespace(root: Path, name: str) -> str:
    """The network namespace of node ``name`` of the cluster under ``root`` (unique per root)."""
    return f"boneage-{zlib.crc32(str(Path(root).resolve()).encode()) % 10**6}-{name}"


def _network_up(root: Path, names: list[str], host: str) -> None:
    """A bridge with this host at .1 and one namespace per node, linked by a veth pair."""
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        raise RuntimeError(f"{BRIDGE} exists: another multi-node test cluster is running")
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    hosts = f"127.0.0.1 localhost\n{NET}.1 {host}\n" + "".join(
        f"{NET}.{10 + k} {n}\n" for k, n in enumerate(names, 1)
    )
    for k, name in enumerate(names, 1):
        ns = _namespace(root, name)
        etc = Path("/etc/netns") / ns  # where `ip netns` keeps a namespace's /etc files
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts)
        _run("ip", "netns", "add", ns)
        outside, inside = f"bag{k}-{os.getpid() % 10000}", "eth0"
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns)
        _run("ip", "link", "set", outside, "master", BRIDGE)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NET}.{10 + k}/24", "dev", inside)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")


def _stand_in_gpu(root: Path, index: int) -> str:
    """A device file for GPU ``index``: a character device with NVIDIA's numbers (no driver
    behind it), or a plain file where this machine may not make devices."""
    path = root / "dev" / f"nvidia{index}"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(195, index))
        except PermissionError:
            path.touch()
    return str(path)


def start(
    root: Path, cpus: int | None = None, mem_mb: int | None = None, nodes: int = 1, gpus: int = 0
) -> dict[str, str]:
    """Start munged, slurmctld and ``nodes`` slurmd under ``root``; return the environment.

    ``cpus`` and ``mem_mb`` are what each node declares (default: this
    machine's cores and 80 % of its memory). ``gpus``: each node declares that
    many GPUs as GRES, with terminals as stand-in device files (Slurm only
    stats them; it sets a job's CUDA_VISIBLE_DEVICES from their order).
    """
    root = Path(root).resolve()
    for sub in ("munge", "state", "spool", "nodetmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    mem_mb = mem_mb or int(total_mb * 0.8)
    names = [f"node{k}" for k in range(1, nodes + 1)] if nodes > 1 else []
    lines = [
        NODE.format(name=n, addr=f"{NET}.{10 + k}", cpus=cpus, mem=mem_mb)
        for k, n in enumerate(names, 1)
    ] or [NODE.format(name=host, addr="127.0.0.1", cpus=cpus, mem=mem_mb)]
    (root / "gres.conf").unlink(missing_ok=True)  # slurmd reads it beside slurm.conf
    if gpus:
        lines = ["GresTypes=gpu"] + [f"{line} Gres=gpu:{gpus}" for line in lines]
        files = ",".join(_stand_in_gpu(root, i) for i in range(gpus))
        (root / "gres.conf").write_text(f"AutoDetect=off\nName=gpu File={files}\n")
    text = CONF.format(
        host=host,
        ctl_addr=f"{NET}.1" if names else "127.0.0.1",
        root=root,
        nodes="\n".join(lines),
        port=_free_port(),
        dport=_free_port(),
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
    (root / "nodes").write_text(" ".join(names))
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
    if names:
        _network_up(root, names, host)
    subprocess.run(["slurmctld", "-c", "-i", "-f", str(conf)], check=True, env=env)
    for name in names or [host]:
        (root / "spool" / name).mkdir(exist_ok=True)
        daemon = ["slurmd", "-c", "-f", str(conf), "-N", name]
        if names:  # its own host: network, hostname, and /etc/hosts (in its own mounts)
            ns = _namespace(root, name)
            hosts = Path("/etc/netns") / ns / "hosts"
            tmp = root / "tmp" / name  # each node's own TmpFS (PMIx puts step folders there)
            tmp.mkdir(parents=True, exist_ok=True)
            script = (
                f"hostname {name} && mount --bind {hosts} /etc/hosts"
                f' && mount --bind {tmp} {root}/nodetmp && exec "$@"'
            )
            daemon = ["nsenter", f"--net=/run/netns/{ns}", "unshare", "--uts", "--mount"]
            daemon += ["sh", "-c", script, "-", "slurmd", "-c", "-f", str(conf), "-N", name]
        subprocess.run(daemon, check=True, env=env)

    def nodes_idle() -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=env
        )
        states = [s.rstrip("*") for s in out.stdout.split()]
        return (
            out.returncode == 0
            and len(states) == len(names or [host])
            and all(s in ("idle", "mixed") for s in states)
        )

    _wait(nodes_idle, "the nodes", root / f"slurmd-{(names or [host])[-1]}.log")
    return {"SLURM_CONF": str(conf)}


def kill_node(root: Path, name: str) -> None:
    """A node dies: every process in its namespace (slurmd, its jobs) is killed at once."""
    ns = _namespace(root, name)
    pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def _kill_pidfile(path: Path) -> None:
    """SIGTERM the daemon named by ``path`` and wait until it is gone."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.2)


def stop(root: Path) -> None:
    """Cancel every job, stop the daemons and remove what start made outside ``root``.

    Namespaces, links, the bridge, /etc/netns entries and /etc/slurm/slurm.conf
    go only where this module made them.
    """
    root = Path(root).resolve()
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
    if shutil.which("scancel"):
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
    names = node_names(root)
    for pidfile in sorted(root.glob("slurmd-*.pid")):
        _kill_pidfile(pidfile)
    for name in names:
        kill_node(root, name)  # job steps a killed slurmd left behind
        ns = _namespace(root, name)
        _run("ip", "netns", "del", ns, check=False)  # takes its end of the veth pair along
        shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
    if names:
        _run("ip", "link", "del", BRIDGE, check=False)
    for pidfile in ("slurmctld.pid", "munge/munged.pid"):
        _kill_pidfile(root / pidfile)
    if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text().startswith(MARK):
        SYSTEM_CONF.unlink()


@contextmanager
def running(root: Path, **kwargs) -> Iterator[dict[str, str]]:
    """A started cluster (see :func:`start`) for the ``with`` block, stopped after it.

    Yields the environment a test's commands use: this one, the cluster's
    SLURM_CONF, the venv's programs first and TensorFlow's start-up chatter off.
    """
    try:
        extra = start(root, **kwargs)
        yield {
            **os.environ,
            **extra,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    finally:
        stop(root)


@dataclass(frozen=True)
class Queued:
    """One job in one ``squeue`` sample."""

    rule: str
    state: str  # PD, R, CG, ...
    node: str  # where it runs ("" while pending)
    cpus: int
    mem_mb: int  # what the job asked for
    gres: str = ""  # generic resources per node, e.g. gres:gpu:2 ("" for none)
    nodes: int = 1


class QueueWatcher(threading.Thread):
    """Samples ``squeue`` (every job: rule, state, nodes, CPUs, memory, GRES) every half second."""

    def __init__(self, env: dict) -> None:
        super().__init__(daemon=True)
        self.env, self.samples, self.done = env, [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            out = subprocess.run(
                ["squeue", "-h", "-o", "%k|%t|%N|%C|%m|%b|%D"],
                capture_output=True,
                text=True,
                env=self.env,
            ).stdout
            sample = []
            for line in out.splitlines():
                if line.count("|") == 6:
                    comment, state, node, cpus, mem, gres, nodes = line.split("|")
                    gres = "" if gres in ("N/A", "(null)") else gres
                    job = Queued(
                        rule_of(comment), state, node, int(cpus), _mb(mem), gres, int(nodes)
                    )
                    sample.append(job)
            self.samples.append(sample)
            time.sleep(0.5)

    def stop(self) -> list[list[Queued]]:
        """Stop sampling; every sample taken."""
        self.done.set()
        self.join()
        return self.samples


def watched(work: Path, env: dict, *args: str) -> list[list[Queued]]:
    """Run Snakemake in ``work`` through the Slurm profile while a :class:`QueueWatcher`
    samples the queue; the samples (AssertionError with the log's tail if Snakemake fails)."""
    from boneage.workflow_run import snakemake, tail

    watcher = QueueWatcher(env)
    watcher.start()
    try:
        proc = snakemake(work, *args, profile="slurm", env=env)
    finally:
        samples = watcher.stop()
    assert proc.returncode == 0, tail(proc, 5000)
    return samples


def two_node_problem() -> str | None:
    """What this machine lacks for the two-node cluster (None when nothing)."""
    if missing() or not shutil.which("ip"):
        return "two-node Slurm tests need slurm-wlm, munge and iproute2: scripts/setup.sh --test"
    return None


def rule_of(comment: str) -> str:
    """The rule of a job from the Slurm plugin's comment (rule_<name>_wildcards_...)."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def _mb(text: str) -> int:
    """squeue's %m (e.g. 930M, 4G) in MB."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    return round(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        env = start(Path(argv[1]), nodes=int(argv[2]) if len(argv) == 3 else 1)
        print(f"export SLURM_CONF={env['SLURM_CONF']}")
    else:
        stop(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
