"""Grouped prediction: one MPI job predicts a group of shards, rank 0 hands them out.

For clusters that cap jobs per user, ``predict.mode: grouped`` submits one
job per group of shards instead of one per shard. The job runs P ranks (the
node plan's processes, each with the plan's threads). Rank 0 runs a small
dispatcher thread that hands the next shard to whichever rank asks first,
so a slow shard never holds the others up, and predicts shards itself in
between. Each shard is predicted by :func:`boneage.predict.predict_shard`,
exactly as a per-shard job would; rank 0 gathers the tables and writes them
in shard order, so the group's rows equal the per-shard tables concatenated.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

import pandas as pd

REQUEST, ASSIGN = 1, 2
#: Seconds between the dispatcher's polls (MPI's blocking receive would spin a core).
POLL_S = 0.005


class _Queue:
    """The shard indices still to hand out, shared by rank 0's two threads."""

    def __init__(self, n: int) -> None:
        self._next, self._n, self._lock = 0, n, threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._next >= self._n:
                return None
            self._next += 1
            return self._next - 1


def _serve(comm, queue: _Queue, workers: int) -> None:
    """Rank 0's dispatcher: answer each rank's request with a shard index, or None to stop."""
    from mpi4py import MPI

    status = MPI.Status()
    stopped = 0
    while stopped < workers:
        if not comm.Iprobe(source=MPI.ANY_SOURCE, tag=REQUEST, status=status):
            time.sleep(POLL_S)
            continue
        source = status.Get_source()
        comm.recv(source=source, tag=REQUEST)
        index = queue.take()
        comm.send(index, dest=source, tag=ASSIGN)
        stopped += index is None


class SoloComm:
    """A one-rank stand-in for an MPI communicator: a job of one rank needs no MPI at all
    (a one-process node plan; mpi4py's singleton start inside a Slurm job is avoided)."""

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's names
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def gather(self, obj, root: int = 0) -> list:
        return [obj]


def run_group(
    shards: Sequence[str],
    predict: Callable[[str], pd.DataFrame],
    comm=None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame | None:
    """Predict ``shards`` over the ranks of ``comm``; rank 0 returns the tables in order."""
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    queue = _Queue(len(shards)) if rank == 0 else None
    server = None
    if rank == 0 and size > 1:
        server = threading.Thread(target=_serve, args=(comm, queue, size - 1), daemon=True)
        server.start()

    def next_index() -> int | None:
        if queue is not None:  # rank 0
            return queue.take()
        comm.send(None, dest=0, tag=REQUEST)
        return comm.recv(source=0, tag=ASSIGN)

    done: dict[int, pd.DataFrame] = {}
    while (index := next_index()) is not None:
        start = time.monotonic()
        done[index] = predict(shards[index])
        log(
            f"rank {rank}/{size}: {os.path.basename(shards[index])} "
            f"({len(done[index])} images) in {time.monotonic() - start:.1f} s"
        )
    if server is not None:
        server.join()
    parts = comm.gather(done, root=0)
    if rank != 0:
        return None
    tables = {i: t for part in parts for i, t in part.items()}
    missing = sorted(set(range(len(shards))) - set(tables))
    if missing:
        raise RuntimeError(f"shards never predicted: {[shards[i] for i in missing]}")
    return pd.concat([tables[i] for i in range(len(shards))], ignore_index=True)
