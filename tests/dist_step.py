"""Run K distributed train steps on a fixed global batch; save this rank's weights.

Launched by tests/cluster/test_train_dist.py under ``horovodrun -np N`` (each rank
takes its 1/N of the global batch) or as one process (the whole batch).
The model has no batch normalisation, so N ranks must match one process.
"""

from __future__ import annotations

import sys

import numpy as np


def main(out: str, steps: int = 5, global_batch: int = 8) -> None:
    import keras

    from boneage.distribute import detect
    from boneage.losses import loss_function
    from boneage.train import make_train_step

    dist = detect()
    keras.utils.set_random_seed(1234 + dist.rank)  # different init per rank: broadcast fixes it
    image = keras.Input((16, 16, 1), name="image")
    sex = keras.Input((1,), name="sex")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(x), sex])
    model = keras.Model({"image": image, "sex": sex}, {"months": keras.layers.Dense(1)(x)})
    optimizer = keras.optimizers.SGD(0.05)
    optimizer.build(model.trainable_variables)
    dist.broadcast(model.variables)
    dist.broadcast(optimizer.variables)
    step = make_train_step(model, optimizer, dist, loss_function("mae"))
    rng = np.random.default_rng(0)
    per_rank = global_batch // dist.size
    for _ in range(steps):
        images = rng.random((global_batch, 16, 16, 1)).astype(np.float32)
        sexes = rng.integers(0, 2, (global_batch, 1)).astype(np.float32)
        ys = rng.uniform(0, 5, (global_batch, 1)).astype(np.float32)
        mine = slice(dist.rank * per_rank, (dist.rank + 1) * per_rank)
        step({"image": images[mine], "sex": sexes[mine]}, ys[mine])
    np.savez(
        f"{out}/weights_rank{dist.rank}_of{dist.size}.npz",
        *[np.asarray(v) for v in model.trainable_variables],
    )


if __name__ == "__main__":
    main(sys.argv[1])
