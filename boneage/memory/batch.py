"""``batch_size: auto``: the batch a process takes, from its GPU's memory.

Resolved by the CLI before training or predict starts (after the process's
devices are configured: sizing builds the model); 32 for training and 64 for
predict on a host without a GPU.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from boneage.experiment import AUTO_CPU_BATCH, PREDICT_CPU_BATCH, PREDICT_GPU_LIMIT, Experiment
from boneage.launch import gpu_memory_mb
from boneage.memory.model import experiment_footprint, gpu_batch_size, model_footprint

log = logging.getLogger(__name__)


def resolve_batch_size(exp: Experiment) -> Experiment:
    """``batch_size: auto``: the largest batch the GPU's memory holds by the estimate; 32 on CPU."""
    if exp.batch_size != "auto":
        return exp
    gpu_mb = gpu_memory_mb()
    if gpu_mb is None:
        return replace(exp, batch_size=AUTO_CPU_BATCH)
    footprint = experiment_footprint(exp)
    batch = gpu_batch_size(footprint, gpu_mb, exp.optimizer)
    log.info(f"batch_size auto: {batch} per GPU ({gpu_mb:,.0f} MB)")
    return replace(exp, batch_size=batch)


def predict_batch(model, batch_size: int | str) -> int:
    """``auto``: the largest batch the job's GPU holds (at most 256), 64 on CPU; else as given."""
    if batch_size != "auto":
        return int(batch_size)
    gpu_mb = gpu_memory_mb()
    if gpu_mb is None:
        return PREDICT_CPU_BATCH
    batch = gpu_batch_size(model_footprint(model), gpu_mb, limit=PREDICT_GPU_LIMIT, step="predict")
    log.info(f"batch_size auto: {batch} ({gpu_mb:,.0f} MB GPU)")
    return batch
