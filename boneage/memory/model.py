"""Peak memory of a train or predict process, estimated from the model.

A :class:`ModelFootprint` counts what a Keras model holds: parameters, and the
floats each layer outputs per image at the input size. :func:`peak_memory` turns
a footprint into the peak resident memory of one process:

* runtime: the Python + TensorFlow + Keras process before any model
  (measured for TF 2.17 on CPU; a CUDA context would add host memory that
  is not counted here);
* weights (4 bytes a parameter); in training also gradients and the
  optimizer's slots (Adam/AdamW: 2, SGD with momentum: 1);
* activations: every layer output of the batch. In training they are kept
  for the backward pass, and gradients of some come on top (x ``BACKWARD``,
  fitted to measurements of small_cnn, resnet50 and vgg16 on TF 2.17 CPU);
  in eager inference on CPU, TF's allocator does not give freed layer
  outputs back to the OS during a batch, so peak RSS grows by about all of
  them (measured: small_cnn, batch 64 -> +355 MB vs 333 MB counted);
* data: the shard a predict job holds, or a training job's example cache and
  shuffle buffer.

For orientation (issue #5), a VGG19 classifier in training needs about
2.3 GB for its model state at 224x224 and 9.1 GB at 512x512;
tests/unit/test_memory_model.py checks the estimate against both, and
``bench/memory_estimate.py`` against measured peak RSS.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from boneage.config import section_defaults
from boneage.experiment import PREDICT_CPU_BATCH, PREDICT_GPU_LIMIT, Experiment

MB = 2**20
_EXP_OPTIMIZER = section_defaults("experiments")["optimizer"]  # the schema's default
#: Resident memory of an idle Python + TensorFlow 2.17 + Keras 3 process on CPU (MB).
#: (measured: 453 MB after ``import tensorflow``, ~30 MB more to load and run a model).
RUNTIME_MB = 485.0
#: A training process's tf.data pipeline and traced train step on top (MB; measured 0-230).
TRAIN_PIPELINE_MB = 60.0
#: Extra memory per intra-op thread (thread-local buffers, stacks), MB.
THREAD_MB = 4.0
#: Memory of training activations relative to the forward outputs (measured 1.2-2.0).
BACKWARD = 1.5
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "sgd": 1}
#: Training examples shuffled in memory (see boneage.data.make_dataset).
SHUFFLE_BUFFER = 4096
#: GPU memory taken before the model: CUDA context, cuDNN and cuBLAS workspaces (MB).
GPU_RESERVE_MB = 1024


def predict_host_batch(batch_size: int | str, gpus: int = 0) -> int:
    """The predict batch host memory must hold: ``auto`` is at most the GPU limit on a GPU node."""
    if isinstance(batch_size, int):
        return batch_size
    return PREDICT_GPU_LIMIT if gpus else PREDICT_CPU_BATCH


@dataclass(frozen=True)
class ModelFootprint:
    """What a model holds, per image where it scales with the batch."""

    backbone: str
    image_size: int
    params: int
    trainable: int
    activations: int  # floats of all layer outputs for one image
    #: Measured peak RSS (MB) of a few train steps on random data at ``probe_batch``
    #: (:func:`probe_train_step`): the model, its traced graph and activations, no data.
    train_peak_mb: float | None = None
    probe_batch: int | None = None

    def save(self, path: str | os.PathLike[str]) -> None:
        from boneage.atomic import write_json

        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ModelFootprint":
        with open(path) as fh:
            return cls(**json.load(fh))


@dataclass(frozen=True)
class PeakMemory:
    """Peak resident memory of one process, by part (MB)."""

    runtime: float
    weights: float
    gradients: float
    optimizer: float
    activations: float
    data: float

    @property
    def model(self) -> float:
        """The model's own state: weights, gradients, optimizer slots and activations."""
        return self.weights + self.gradients + self.optimizer + self.activations

    @property
    def total(self) -> float:
        return self.runtime + self.model + self.data

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in asdict(self).items())
        return f"{self.total:,.0f} MB ({parts})"


def _leaf_layers(model):
    """Layers of a model, descending into nested models (keras.applications backbones)."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


def _floats(tensors) -> int:
    import numpy as np

    total = 0
    for t in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
        total += int(np.prod([d for d in t.shape[1:] if d is not None]))
    return total


def model_footprint(model, backbone: str = "", image_size: int = 0) -> ModelFootprint:
    """Count a built Keras functional model's parameters and per-image layer outputs."""
    import numpy as np

    activations = 0
    for layer in _leaf_layers(model):
        if layer._inbound_nodes and layer.__class__.__name__ != "InputLayer":  # noqa: SLF001
            activations += _floats(layer._inbound_nodes[0].output_tensors)  # noqa: SLF001
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return ModelFootprint(backbone, image_size, int(model.count_params()), trainable, activations)


def experiment_footprint(exp: Experiment) -> ModelFootprint:
    """Build the experiment's model (random weights) and count its footprint."""
    from boneage.models import build_model

    model = build_model(exp.backbone, exp.image_size, loss=exp.loss, sex_mode=exp.sex_mode)
    return model_footprint(model, exp.backbone, exp.image_size)


def peak_memory(
    footprint: ModelFootprint,
    step: str,
    batch_size: int,
    *,
    optimizer: str = _EXP_OPTIMIZER,
    threads: int = 1,
    examples: int = 0,
    stored_size: int | None = None,
    cache_mb: float = 2048.0,
    shard_images: int = 0,
    tta_views: int = 1,
) -> PeakMemory:
    """Peak memory of one ``step`` ("train" or "predict") process; see the module doc.

    ``examples`` is the training examples a rank reads (its cache), and
    ``shard_images`` the images of the shard a predict job holds; both are
    stored as uint8 at ``stored_size`` (the shard image size).
    """
    if step not in ("train", "predict"):
        raise ValueError(f"no memory model for step {step!r}")
    stored = stored_size or footprint.image_size
    runtime = RUNTIME_MB + THREAD_MB * threads
    weights = 4 * footprint.params / MB
    image_floats = footprint.image_size**2  # one float32 input image
    if step == "train":
        if footprint.train_peak_mb and footprint.probe_batch == batch_size:
            # Measured beats modelled: the traced train graph of some networks
            # (inceptionv3: ~780 MB at any batch) has no term in the model below.
            runtime = footprint.train_peak_mb + TRAIN_PIPELINE_MB
            return PeakMemory(
                runtime,
                0.0,
                0.0,
                0.0,
                0.0,
                _train_data(footprint, batch_size, examples, stored, cache_mb),
            )
        gradients = 4 * footprint.trainable / MB
        optimizer_mb = OPTIMIZER_SLOTS.get(optimizer, 2) * gradients
        activations = BACKWARD * 4 * batch_size * footprint.activations / MB
        runtime += TRAIN_PIPELINE_MB
        data = _train_data(footprint, batch_size, examples, stored, cache_mb)
        return PeakMemory(runtime, weights, gradients, optimizer_mb, activations, data)
    activations = 4 * batch_size * footprint.activations / MB
    data = shard_images * stored**2 / MB + 2 * 4 * batch_size * image_floats * tta_views / MB
    return PeakMemory(runtime, weights, 0.0, 0.0, activations, data)


def _train_data(
    footprint: ModelFootprint, batch_size: int, examples: int, stored: int, cache_mb: float
) -> float:
    """A training process's data: its example cache, the shuffle buffer, batches in flight."""
    cached = examples * stored**2 / MB
    return (
        (cached if cached <= cache_mb else 0.0)
        + min(SHUFFLE_BUFFER, examples or SHUFFLE_BUFFER) * stored**2 / MB
        + 3 * 4 * batch_size * footprint.image_size**2 / MB
    )  # a batch in flight, prefetched, augmented


def gpu_batch_size(
    footprint: ModelFootprint,
    gpu_mem_mb: float,
    optimizer: str = _EXP_OPTIMIZER,
    fill: float = 0.85,
    limit: int = 256,
    step: str = "train",
) -> int:
    """The largest power-of-two batch (up to ``limit``) whose :func:`gpu_memory_mb` is
    within ``fill`` of the GPU's memory."""
    budget = gpu_mem_mb * fill

    def fits(batch: int) -> bool:
        return gpu_memory_mb(footprint, batch, step, optimizer) <= budget

    if not fits(1):
        raise ValueError(
            f"{footprint.backbone} at {footprint.image_size} px needs "
            f"{gpu_memory_mb(footprint, 1, step, optimizer):,.0f} MB for one image; "
            f"the GPU has {gpu_mem_mb:,.0f} MB"
        )
    batch = 1
    while batch * 2 <= limit and fits(batch * 2):
        batch *= 2
    return batch


def gpu_memory_mb(
    footprint: ModelFootprint, batch_size: int, step: str = "train", optimizer: str = _EXP_OPTIMIZER
) -> float:
    """GPU memory one process takes at ``batch_size``: :data:`GPU_RESERVE_MB`, the model's
    state (training: weights, gradients, optimizer slots; predict: weights) and the batch's
    activations (as in :func:`peak_memory`, without the host-side runtime and data)."""
    state = peak_memory(footprint, step, 0, optimizer=optimizer)
    per_image = (BACKWARD if step == "train" else 1.0) * 4 * footprint.activations / MB
    return GPU_RESERVE_MB + state.model + batch_size * per_image
