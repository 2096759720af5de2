"""Resource estimates that rules take instead of hard-coded numbers, and node plans.

Figures are peak resident memory in MB for one job of a step, from what the
step holds: the TensorFlow runtime (~600 MB once imported), the model and
its activations, and the data it keeps in memory. They are deliberately
generous; the calibrate step (issue #5) will replace guesses by measurement.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

TF_RUNTIME_MB = 700
#: Memory kept free on a node for the OS and the scheduler's daemons (MB).
NODE_RESERVE_MB = 2048
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


@dataclass(frozen=True)
class NodePlan:
    """How many processes share a node and how many threads each gets."""

    processes: int
    threads: int
    node_cores: int
    node_mem_mb: int
    proc_mem_mb: int

    @property
    def busy_cores(self) -> int:
        return self.processes * self.threads

    def describe(self) -> str:
        """One line for people: this plan against one single-threaded process per slot."""
        return (f"{self.processes} processes x {self.threads} threads = {self.busy_cores} of "
                f"{self.node_cores} cores busy, {self.processes * self.proc_mem_mb} of "
                f"{self.node_mem_mb} MB memory (single-threaded: {self.processes} of "
                f"{self.node_cores} cores)")


def parse_size_mb(text: str | int) -> int:
    """``64G``, ``11GB``, ``512M``, ``2048`` (MB) -> megabytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 64G, 11GB, 512M)")
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def plan_node(node_mem_mb: int, node_cores: int, proc_mem_mb: int,
              reserve_mb: int = NODE_RESERVE_MB) -> NodePlan:
    """Memory decides how many processes fit; threads fill the cores it would leave idle.

    processes = min(cores, floor((node memory - reserve) / per-process memory));
    threads per process = floor(cores / processes).
    """
    fits = (node_mem_mb - reserve_mb) // proc_mem_mb
    if fits < 1:
        raise ValueError(f"one process needs {proc_mem_mb} MB but the node has "
                         f"{node_mem_mb - reserve_mb} MB after the {reserve_mb} MB reserve")
    processes = min(node_cores, fits)
    return NodePlan(processes, node_cores // processes, node_cores, node_mem_mb, proc_mem_mb)
