"""Devices per rank: CPU threads split between a node's ranks; batch_size auto from GPU memory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from harness import fake_gpu

from boneage.experiment import Experiment
from boneage.memory.batch import resolve_batch_size

SPLIT = """
from boneage.distribute import Distribution, configure_devices
import tensorflow as tf

class TwoLocalRanks(Distribution):
    local_size = 2

print(configure_devices(TwoLocalRanks(), {threads}))
print(tf.config.threading.get_intra_op_parallelism_threads())
"""


@pytest.mark.parametrize(("threads", "per_rank"), [(4, 2), (5, 2), (1, 1)])
def test_cpu_threads_are_split_between_the_ranks_of_a_node(threads, per_rank):
    """A job of ``threads`` cores with 2 ranks on the node: each rank's TensorFlow gets half."""
    out = subprocess.run(
        [sys.executable, "-c", SPLIT.format(threads=threads)],
        capture_output=True,
        text=True,
        env={"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout.split("\n")
    assert out[0] == f"CPU, {per_rank} thread(s)"
    assert int(out[1]) == per_rank  # what TensorFlow itself reports


def test_batch_size_auto_is_32_without_a_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    exp = resolve_batch_size(Experiment("e", batch_size="auto", image_size=64))
    assert exp.batch_size == 32


def test_batch_size_auto_is_the_largest_power_of_two_the_gpu_holds(tmp_path, monkeypatch):
    """The batch's training memory on the device fits 85 % of the GPU; twice it would not."""
    from boneage.memory.model import BACKWARD, GPU_RESERVE_MB, MB, experiment_footprint, peak_memory

    exp = Experiment("e", batch_size="auto", backbone="resnet50", image_size=224)
    footprint = experiment_footprint(exp)
    model_mb = peak_memory(footprint, "train", 0, optimizer="adamw").model
    batches = []
    for gpu_mb in (8_000, 16_000, 40_000):
        fake_gpu(tmp_path, monkeypatch, gpu_mb)
        batch = resolve_batch_size(exp).batch_size
        device = lambda b: model_mb + b * BACKWARD * 4 * footprint.activations / MB  # noqa: E731
        budget = 0.85 * gpu_mb - GPU_RESERVE_MB
        assert batch & (batch - 1) == 0 and device(batch) <= budget < device(2 * batch), gpu_mb
        batches.append(batch)
    assert batches == sorted(batches) and batches[0] < batches[-1]
