"""One interface for single-process and Horovod training.

The train step calls :meth:`Distribution.allreduce` on its gradients and the
loop calls :meth:`broadcast` once after building the model; with one process
both are no-ops, under ``horovodrun``/``srun`` they average over ranks
(Horovod's DistributedOptimizer does not work with Keras 3, so gradients are
reduced explicitly).
"""

from __future__ import annotations

import os


class Distribution:
    """A single process: rank 0 of 1."""

    rank = 0
    size = 1
    local_rank = 0

    def allreduce(self, tensors):
        """Average a list of tensors over ranks."""
        return tensors

    def average(self, value: float) -> float:
        """Average a Python number over ranks."""
        return value

    def broadcast(self, variables) -> None:
        """Copy ``variables`` from rank 0 to all ranks."""

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints, history and logs."""
        return self.rank == 0


class HorovodDistribution(Distribution):
    """Ranks started by ``horovodrun`` (Gloo or MPI) or ``srun --mpi=pmix``."""

    def __init__(self) -> None:
        import horovod.tensorflow as hvd

        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()

    def allreduce(self, tensors):
        return [None if t is None else self.hvd.allreduce(t, op=self.hvd.Average)
                for t in tensors]

    def average(self, value: float) -> float:
        import tensorflow as tf

        return float(self.hvd.allreduce(tf.constant(value, tf.float64), op=self.hvd.Average))

    def broadcast(self, variables) -> None:
        self.hvd.broadcast_variables(variables, root_rank=0)


def set_threads(intra_op: int | None, inter_op: int = 2) -> None:
    """Size TensorFlow's thread pools; a no-op (with a note) once TF has started."""
    if not intra_op:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        print(f"TensorFlow already started; keeping {current or 'default'} intra-op threads",
              flush=True)


def detect() -> Distribution:
    """Horovod when launched with several ranks, else a single process."""
    launched = any(k in os.environ for k in ("HOROVOD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"))
    return HorovodDistribution() if launched else Distribution()
