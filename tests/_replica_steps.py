"""Worker script for tests/test_distribute_replicas.py (run as a subprocess).

Splits the CPU into 4 logical devices before TensorFlow initializes them, then
trains SupCon, SimCLR and the linear stage for two steps on the same global
batches under no strategy and under MirroredStrategy on 1, 2 and 4 replicas,
with synchronized BatchNorm. Writes, per (case, strategy), the gradients of the
first step, the losses and metrics `fit` reported and every final weight
(BatchNorm moving statistics included) to an .npz file in the directory given
as argv[1]. Usage: python tests/_replica_steps.py OUT_DIR [case ...]
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 4)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from supcon_tf import distribute, encoders, methods  # noqa: E402
from supcon_tf.heads import ProjectionHead  # noqa: E402

GLOBAL_BATCH = 16
STEPS = 2
LEARNING_RATE = 0.5
REPLICAS = (1, 2, 4)


def data(case):
    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * STEPS
    labels = rng.integers(0, 4, size=n)
    images = (rng.random((n, 8, 8, 1)) + labels[:, None, None, None] / 4).astype("float32")
    if case == "linear":
        return images, labels
    views = np.stack([images + 0.1 * rng.standard_normal(images.shape) for _ in range(2)], 1)
    return views.astype("float32"), labels


def build(case):
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16,
                           sync_batch_norm=True)
    if case == "linear":
        return methods.LinearClassifier(encoder, num_classes=6)
    head = ProjectionHead(hidden_dims=(16,), output_dim=8, sync_batch_norm=True)
    model = (methods.SupCon if case == "supcon" else methods.SimCLR)(encoder, head)
    model(keras.ops.zeros((2, 2, 8, 8, 1)))
    return model


def main(out_dir, cases):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 4, devices
    for case in cases:
        keras.utils.set_random_seed(0)
        reference = build(case)
        reference(keras.ops.zeros((2, 8, 8, 1)))
        initial = reference.get_weights()
        strategies = {"none": tf.distribute.get_strategy()}
        strategies.update({f"r{n}": distribute.get_strategy("mirrored", devices=devices[:n])
                           for n in REPLICAS})
        for label, strategy in strategies.items():
            x, y = data(case)
            with strategy.scope():
                model = build(case)
                model(keras.ops.zeros((2, 8, 8, 1)))
                model.set_weights(initial)
                model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
            names = [w.path for w in model.trainable_weights]
            before = [np.array(w) for w in model.trainable_weights]
            history = []
            after_first = None
            for i in range(STEPS):
                batch = slice(i * GLOBAL_BATCH, (i + 1) * GLOBAL_BATCH)
                history.append(model.fit(x[batch], y[batch], batch_size=GLOBAL_BATCH,
                                         shuffle=False, verbose=0).history)
                if i == 0:
                    after_first = [np.array(w) for w in model.trainable_weights]
            out = {f"grad:{n}": (b - a) / LEARNING_RATE
                   for n, b, a in zip(names, before, after_first)}
            out.update({f"weight:{w.path}": np.array(w) for w in model.weights})
            out.update({f"metric:{k}": np.array([h[k][0] for h in history])
                        for k in history[0]})
            out["replicas"] = np.array(strategy.num_replicas_in_sync)
            np.savez(os.path.join(out_dir, f"{case}_{label}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["supcon", "simclr", "linear"])
