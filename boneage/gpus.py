"""Which GPUs a process may use: its own, or none.

TensorFlow takes nearly all the memory of every GPU it sees at its first op,
so on a shared machine (a DGX under the local executor) each step must see
exactly the GPUs it was given:

* steps that need no GPU see none (``CUDA_VISIBLE_DEVICES=``, set before
  TensorFlow loads: :func:`hide_gpus`);
* a step that uses GPUs takes free ones with :func:`claim`: one lock file per
  GPU, held with ``fcntl.flock`` for the life of the process. The kernel
  drops a lock when its holder dies, ``kill -9`` included, so no GPU stays
  taken by a dead job. A job takes all the GPUs it needs at once, or waits;
* under Slurm the job's GPUs come from Slurm (its ``CUDA_VISIBLE_DEVICES``),
  never from a lock.

Children (the ranks ``boneage launch`` starts) inherit the parent's claim
through ``CUDA_VISIBLE_DEVICES`` and :data:`CLAIMED`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
#: Set in the environment of a process whose GPUs are already its own.
CLAIMED = "BONEAGE_GPUS_CLAIMED"
#: Where the per-GPU lock files live (one machine: a local folder every job sees).
LOCK_DIR = Path(os.environ.get("BONEAGE_GPU_LOCKS", "/tmp/boneage-gpu-locks"))


def hide_gpus() -> None:
    """This process and its children see no GPU (call before TensorFlow loads)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def machine_gpus() -> list[str]:
    """The GPU ids this process may choose from: CUDA_VISIBLE_DEVICES, else nvidia-smi's."""
    from boneage.launch import gpu_count

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(gpu_count())]


def rank_gpu(local_rank: int) -> str | None:
    """The GPU a rank takes of those its job sees (its local rank's, as CUDA_VISIBLE_DEVICES
    names them: TensorFlow lists them in that order); None without GPUs."""
    gpus = machine_gpus()
    return gpus[local_rank % len(gpus)] if gpus else None


@dataclass
class Claim:
    """GPUs held by this process until :meth:`release` or its end."""

    ids: list[str]
    files: list = field(default_factory=list, repr=False)

    def release(self) -> None:
        """Let other jobs take these GPUs."""
        for f in self.files:
            f.close()  # closing the file drops its flock
        self.files.clear()

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(gpu: str):
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    f = open(LOCK_DIR / f"gpu{gpu}.lock", "a+")  # noqa: SIM115 - held for the claim's life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def claim(n: int, wait_s: float | None = None, poll_s: float = 1.0) -> Claim:
    """Take ``n`` free GPUs of this machine at once (waiting while fewer are free) and make
    them the only ones this process and its children see.

    Under Slurm, or where a parent already claimed (:data:`CLAIMED`), the GPUs
    visible are taken as they are. ``wait_s``: give up after this long
    (TimeoutError); None waits for as long as it takes.
    """
    gpus = machine_gpus()
    if n <= 0 or not gpus:
        return Claim([])
    if os.environ.get(CLAIMED) or "SLURM_JOB_ID" in os.environ:
        given = "Slurm" if "SLURM_JOB_ID" in os.environ else "the parent process"
        log.info(f"GPU(s) {','.join(gpus)} given by {given}")
        return Claim(gpus[:n])
    if n > len(gpus):
        raise ValueError(f"{n} GPUs asked for, this machine has {len(gpus)}")
    start, said = time.monotonic(), False
    while True:
        files = []
        for gpu in gpus:
            f = _try_lock(gpu)
            if f is not None:
                files.append((gpu, f))
                if len(files) == n:
                    held = Claim([g for g, _ in files], [f for _, f in files])
                    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(held.ids)
                    os.environ[CLAIMED] = "1"
                    log.info(f"GPU(s) {','.join(held.ids)} taken (locks in {LOCK_DIR})")
                    return held
        for _, f in files:  # all at once or none: never hold part of a job's GPUs
            f.close()
        if wait_s is not None and time.monotonic() - start > wait_s:
            raise TimeoutError(f"{n} free GPU(s) not found in {wait_s:.0f} s")
        if not said:
            log.info(f"waiting for {n} free GPU(s) of {len(gpus)}")
            said = True
        time.sleep(poll_s)
