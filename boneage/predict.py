"""Predict bone age for every image of one shard."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from boneage.experiment import PREDICT_CPU_BATCH
from boneage.log import Progress
from boneage.shards import read_shard

log = logging.getLogger(__name__)

#: Columns of a predictions table; ``model_digest`` names the model that made each row.
PREDICTION_COLUMNS = ["id", "row", "sex", "boneage", "true_boneage", "pred", "model_digest"]


def to_model_input(model, images: np.ndarray) -> np.ndarray:
    """uint8 shard images (B, S, S, 1) as float32 in [0, 1] at the model's input size."""
    x = images.astype(np.float32) / 255.0
    size = model.input["image"].shape[1]  # the model's input may differ from the shard's
    if len(x) and x.shape[1] != size:
        import tensorflow as tf

        x = np.asarray(tf.image.resize(x, (size, size), antialias=True))
    return x


def sex_inputs(sex: np.ndarray) -> list[np.ndarray]:
    """The model's sex input for shard codes (1 M, 0 F, 2 not recorded): one array, or
    two (a film of unknown sex as female, then as male) whose predictions are averaged.

    A film of known sex gets the same input twice, so its mean is its own prediction.
    """
    known = sex.astype(np.float32)[:, None]
    unknown = sex == 2
    if not unknown.any():
        return [known]
    return [np.where(unknown[:, None], 0.0, known), np.where(unknown[:, None], 1.0, known)]


def predict_shard(
    model_path,
    shard_path: str | os.PathLike[str],
    batch_size: int = PREDICT_CPU_BATCH,
    threads: int | None = None,
    tta: bool = False,
) -> pd.DataFrame:
    """Run the saved model over a shard; one row per image (columns: PREDICTION_COLUMNS).

    ``batch_size``: images per forward pass (``auto`` is resolved before, by the CLI:
    ``boneage.memory.batch.predict_batch``).

    ``model_path`` is a saved model, or a loaded one (grouped prediction loads
    it once for many shards). With ``tta``, each prediction is the mean over the test-time views of
    :data:`boneage.data.TTA_VIEWS` (small rotations and scalings).
    """
    import tensorflow as tf

    from boneage.data import tta_views
    from boneage.distribute import set_threads
    from boneage.models import load_model, weights_digest

    set_threads(threads)
    model = load_model(model_path) if isinstance(model_path, (str, os.PathLike)) else model_path
    shard = read_shard(shard_path)
    digest = weights_digest(model)
    preds = np.zeros(len(shard), np.float32)
    used = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    name = os.path.basename(str(shard_path))
    progress = Progress(log, f"predict {name} on {used} thread(s)", len(shard))
    for i in range(0, len(shard), batch_size):
        x = to_model_input(model, shard.images[i : i + batch_size])
        views = [np.asarray(v) for v in tta_views(tf.constant(x))] if tta else [x]
        outs = [
            np.asarray(model({"image": v, "sex": s}, training=False)["months"])[:, 0]
            for v in views
            for s in sex_inputs(shard.sex[i : i + batch_size])
        ]
        preds[i : i + batch_size] = np.mean(outs, axis=0)
        progress.update(min(i + batch_size, len(shard)), " images")
    return pd.DataFrame(
        {
            "id": shard.ids,
            "row": shard.row,
            "sex": np.array(["F", "M", "U"])[shard.sex],
            "boneage": shard.boneage,
            "true_boneage": shard.true,
            "pred": np.round(preds, 2),
            "model_digest": digest,
        },
        columns=PREDICTION_COLUMNS,
    )
