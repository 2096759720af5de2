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
    local_size = 1

    def allreduce(self, tensors):
        """Average a list of tensors over ranks."""
        return tensors

    def average(self, value: float) -> float:
        """Average a Python number over ranks."""
        return value

    def broadcast(self, variables) -> None:
        """Copy ``variables`` from rank 0 to all ranks."""

    def gather(self, value: object) -> list:
        """``value`` of every rank, in rank order (on every rank)."""
        return [value]

    def sync(self, variables) -> None:
        """Average the float ``variables`` over ranks in place.

        For what each rank updates from its own batches alone: BatchNorm's
        moving statistics. After it, every rank holds the same model.
        """

    @property
    def is_chief(self) -> bool:
        """Rank 0 alone writes checkpoints, history and logs."""
        return self.rank == 0


class HorovodDistribution(Distribution):
    """Ranks started by ``horovodrun`` (Gloo or MPI) or ``srun --mpi=pmix``."""

    def __init__(self) -> None:
        import horovod.tensorflow as hvd

        from boneage.launch import gpu_count

        if gpu_count() == 0:
            # CPU steps take hundreds of ms: Horovod's background thread polling every
            # 1 ms (the default) steals a core share from compute; 20 ms costs nothing.
            os.environ.setdefault("HOROVOD_CYCLE_TIME", "20")
        hvd.init()
        self.hvd = hvd
        self.rank, self.size = hvd.rank(), hvd.size()
        self.local_rank, self.local_size = hvd.local_rank(), hvd.local_size()

    def allreduce(self, tensors):
        present = [t for t in tensors if t is not None]
        reduced = iter(self.hvd.grouped_allreduce(present, op=self.hvd.Average) if present else [])
        return [None if t is None else next(reduced) for t in tensors]

    def average(self, value: float) -> float:
        import tensorflow as tf

        return float(self.hvd.allreduce(tf.constant(value, tf.float64), op=self.hvd.Average))

    def gather(self, value: object) -> list:
        return list(self.hvd.allgather_object(value))

    def sync(self, variables) -> None:
        import tensorflow as tf

        floats = [v for v in variables if "float" in str(v.dtype)]
        if floats:
            values = [tf.convert_to_tensor(v) for v in floats]
            for v, x in zip(floats, self.hvd.grouped_allreduce(values, op=self.hvd.Average)):
                v.assign(x)

    def broadcast(self, variables) -> None:
        # hvd.broadcast_variables assigns inside a tf.function, which Keras 3
        # variables do not allow: broadcast each value eagerly and assign it.
        import tensorflow as tf

        for i, v in enumerate(variables):
            v.assign(
                self.hvd.broadcast(
                    tf.convert_to_tensor(v), root_rank=0, name=f"boneage.broadcast.{i}"
                )
            )


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
        print(
            f"TensorFlow already started; keeping {current or 'default'} intra-op threads",
            flush=True,
        )


def configure_devices(dist: Distribution, threads: int | None) -> str:
    """One GPU per local rank where there are GPUs; else split the CPU threads.

    ``threads`` is what the job was given for all its local ranks (default:
    every core). Returns a short description for logs.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        gpu = gpus[dist.local_rank % len(gpus)]
        tf.config.set_visible_devices([gpu], "GPU")
        tf.config.experimental.set_memory_growth(gpu, True)
        set_threads(threads)
        from boneage.gpus import rank_gpu

        return f"GPU {rank_gpu(dist.local_rank)}"
    per_rank = max(1, (threads or os.cpu_count() or 1) // dist.local_size)
    set_threads(per_rank, inter_op=1 if per_rank == 1 else 2)
    return f"CPU, {per_rank} thread(s)"


def memory_growth() -> None:
    """Let TensorFlow take GPU memory as it needs it, not nearly all of it at the first op."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def gpu_peak_mb() -> float | None:
    """Peak GPU memory this process has held (TensorFlow's allocator), None on CPU."""
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def detect() -> Distribution:
    """Horovod when launched with several ranks, else a single process."""
    launched = any(k in os.environ for k in ("HOROVOD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"))
    return HorovodDistribution() if launched else Distribution()
