"""Resource estimates that rules take instead of hard-coded numbers.

Figures are peak resident memory in MB for one job of a step, from what the
step holds: the TensorFlow runtime (~600 MB once imported), the model and
its activations, and the data it keeps in memory. They are deliberately
generous; the calibrate step (issue #5) will replace guesses by measurement.
"""

from __future__ import annotations

import os

TF_RUNTIME_MB = 700
PYTHON_MB = 250


def estimate_mem_mb(step: str, image_size: int, shard_size: int, batch_size: int = 32) -> int:
    """Peak memory (MB) of one ``step`` job for this input size and shard size."""
    pixels_mb = image_size * image_size / 2**20
    if step == "shard":
        # One decoded full-size film (up to ~40 MPixel float32) plus the shard's images.
        return int(PYTHON_MB + 4 * 40 + 2 * shard_size * pixels_mb + 100)
    if step == "predict":
        return int(TF_RUNTIME_MB + 4 * shard_size * pixels_mb + 64 * 200 * pixels_mb + 300)
    if step == "train":
        # Activations of a small CNN: ~200 floats per input pixel per image in a batch.
        activations = batch_size * 200 * 4 * pixels_mb
        return int(TF_RUNTIME_MB + activations * 3 + 1500)
    return PYTHON_MB + 250


def machine_memory_mb(reserve_mb: int = 1024) -> int:
    """Physical memory of this machine minus a reserve for the OS, in MB."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(int(total - reserve_mb), 1024)
