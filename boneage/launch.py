"""Start a command as N ranks: one process, horovodrun, mpirun or srun.

* 1 rank: the command itself;
* inside a SLURM job (the Slurm executor's MPI jobs keep SLURM_JOB_ID but
  not SLURM_NTASKS) or an allocation with enough tasks: the job's ``mpi``
  launcher, ``srun --mpi=pmix -n N`` by default (``BONEAGE_SRUN_MPI`` picks
  another PMI plugin) or the site's ``mpiexec -n N`` / ``mpirun -n N``;
* otherwise on this node: ``horovodrun -np N -H localhost:N --gloo|--mpi`` for
  Horovod training, ``mpirun -n N`` for plain MPI (grouped prediction).

Horovod training without GPUs is capped at ``cpu_ranks`` (a DGX profile asks
for 8 ranks; a laptop runs the same command with fewer CPU ranks).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping

log = logging.getLogger(__name__)


def gpu_count() -> int:
    """GPUs this job may use (CUDA_VISIBLE_DEVICES, else ``nvidia-smi -L``); no TF import."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def gpu_memory_mb() -> float | None:
    """Total memory of the first visible GPU in MB (``nvidia-smi``), None without one."""
    if gpu_count() == 0:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return float(out.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def launch_command(
    command: list[str],
    ranks: int,
    cpu_ranks: int,
    controller: str = "gloo",
    gpus: int | None = None,
    env: Mapping[str, str] | None = None,
    mpi: bool = False,
    launcher: str = "srun",
    nodes: int = 1,
    cpus_per_task: int | None = None,
) -> list[str]:
    """The command line that starts ``command`` as the right number of ranks.

    ``mpi``: plain MPI ranks (mpi4py), not capped by GPUs or ``cpu_ranks``.
    ``launcher``: how a Slurm job starts ranks (the rule's ``mpi`` resource).
    ``gpus``: this node's (default: :func:`gpu_count`); Horovod ranks are capped
    at one per GPU on each of the ``nodes`` nodes (``cpu_ranks``: all nodes').
    """
    env = os.environ if env is None else env
    if not mpi:
        gpus = gpu_count() if gpus is None else gpus
        if gpus == 0:
            ranks = min(ranks, cpu_ranks)
        elif gpus * nodes < ranks:
            ranks = gpus * nodes
    ranks = max(ranks, 1)
    if ranks == 1:
        return command
    if "SLURM_JOB_ID" in env and int(env.get("SLURM_NTASKS", ranks)) >= ranks:
        launcher = launcher or "srun"
        if launcher == "srun":
            # -c: Slurm 22.05 to 23.02 do not pass the job's --cpus-per-task on to srun,
            # which would pin each rank to one core; the rule says what it asked for (the
            # Slurm executor's job step does not keep SLURM_CPUS_PER_TASK).
            cpus = str(cpus_per_task) if cpus_per_task else env.get("SLURM_CPUS_PER_TASK")
            return [
                "srun",
                f"--mpi={env.get('BONEAGE_SRUN_MPI', 'pmix')}",
                "-n",
                str(ranks),
                *(["-c", cpus] if cpus else []),
                *command,
            ]
        return [*launcher.split(), "-n", str(ranks), *command]
    if mpi:
        root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
        return ["mpirun", *root, "--oversubscribe", "-n", str(ranks), *command]
    return [
        "horovodrun",
        "-np",
        str(ranks),
        "-H",
        f"localhost:{ranks}",
        f"--{controller}",
        *command,
    ]


def launch(
    command: list[str],
    ranks: int,
    cpu_ranks: int,
    controller: str = "gloo",
    mpi: bool = False,
    launcher: str = "srun",
    nodes: int = 1,
    cpus_per_task: int | None = None,
) -> int:
    """Run ``command`` as ranks (see :func:`launch_command`); return its exit status."""
    line = launch_command(
        command,
        ranks,
        cpu_ranks,
        controller,
        mpi=mpi,
        launcher=launcher,
        nodes=nodes,
        cpus_per_task=cpus_per_task,
    )
    log.info("launch: " + " ".join(line))
    return subprocess.call(line)
