"""An experiment: the one form the settings of a training run take below the CLI.

The ``experiments:`` entries of config.yaml become an :class:`Experiment`
(``Experiment.from_dict``); training, the memory estimate, the node plan and
the CLI all take this type. Its defaults are the config schema's, as for a
config.yaml entry. Importing it loads no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boneage.config import schema_default, section_defaults

#: ``batch_size: auto`` on a host without a GPU (and what host-memory estimates count).
AUTO_CPU_BATCH = 32
#: ``predict: {batch_size: auto}``: the batch on CPU, and the most it takes on a GPU.
PREDICT_CPU_BATCH = 64
PREDICT_GPU_LIMIT = 256
_EXP = section_defaults("experiments")  # the schema holds every default


@dataclass
class Experiment:
    """Settings of one training run (the ``experiments:`` entries of config.yaml).

    Defaults come from the config schema, as for a config.yaml entry.
    """

    name: str
    backbone: str = _EXP["backbone"]
    image_size: int = schema_default("image_size")  # an entry's default is the global one
    epochs: int = _EXP["epochs"]
    batch_size: int | str = _EXP["batch_size"]  # or "auto": from GPU memory (boneage.memory.batch)
    learning_rate: float = _EXP["learning_rate"]
    warmup_epochs: int = _EXP["warmup_epochs"]
    weight_decay: float = _EXP["weight_decay"]
    optimizer: str = _EXP["optimizer"]
    schedule: str = _EXP["schedule"]
    loss: str = _EXP["loss"]
    sex_mode: str = _EXP["sex_mode"]
    weights: str = _EXP["weights"]  # random, imagenet or a file (boneage.weights)
    freeze_epochs: int = _EXP["freeze_epochs"]  # head alone first, backbone frozen
    backbone_lr_scale: float = _EXP["backbone_lr_scale"]  # backbone rate / head rate
    lr_scaling: str | None = _EXP["lr_scaling"]  # with ranks; None: by optimizer (LR_SCALING)
    augment: bool = _EXP["augment"]
    seed: int = _EXP["seed"]
    train_censored: bool = section_defaults("labels")["train_censored"]
    precision: str = _EXP["precision"]  # or mixed_float16 (GPUs), mixed_bfloat16 (Ampere+, CPUs)
    xla: bool = _EXP["xla"]  # compile the forward and backward pass with XLA
    deterministic: bool = _EXP["deterministic"]  # bit-identical reruns (TF op determinism)

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> "Experiment":
        """An experiment from its settings (a config.yaml entry, or ``asdict`` of one)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "name"}
        return cls(name=name, **known)

    @property
    def host_batch(self) -> int:
        """The batch a host-memory estimate counts: ``auto`` sizes GPU memory, so 32 (as on
        CPU, where auto means 32)."""
        return self.batch_size if isinstance(self.batch_size, int) else AUTO_CPU_BATCH
