"""Worker script for tests/test_distribute_replicas.py (run as a subprocess).

Splits the CPU into 4 logical devices before TensorFlow initializes them, then
trains SupCon, SimCLR, SwAV (with its queue) and the linear stage for two steps on the same global
batches under MirroredStrategy on REPLICAS replicas (and, for 1, no strategy),
with synchronized BatchNorm. Writes, per (case, strategy), the gradients of the
first step, the losses and metrics `fit` reported and every final weight
(BatchNorm moving statistics included), and for the linear stage the
results of `evaluate`, to an .npz file in the directory given
as argv[1]. One replica count per process: TensorFlow's collective ops do not
support two MirroredStrategies over different device sets in one process.
Usage: python tests/_replica_steps.py OUT_DIR REPLICAS [case ...]
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
LEARNING_RATE = 0.1
NUM_CLASSES = 6


def data(case):
    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * STEPS
    labels = rng.integers(0, NUM_CLASSES if case == "linear" else 4, size=n)
    images = (rng.random((n, 8, 8, 1)) + labels[:, None, None, None] / 4).astype("float32")
    if case == "linear":
        return images, labels
    views = np.stack([images + 0.1 * rng.standard_normal(images.shape) for _ in range(2)], 1)
    return views.astype("float32"), labels


def build(case):
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16,
                           sync_batch_norm=True)
    if case == "linear":
        return methods.LinearClassifier(encoder, num_classes=NUM_CLASSES)
    head = ProjectionHead(hidden_dims=(16,), output_dim=8, sync_batch_norm=True)
    if case == "swav":  # Sinkhorn-Knopp on the global batch, with a queue from step 2.
        model = methods.SwAV(encoder, head, num_prototypes=6, queue_size=16)
    else:
        model = (methods.SupCon if case == "supcon" else methods.SimCLR)(encoder, head)
    model(keras.ops.zeros((2, 2, 8, 8, 1)))
    return model


class _Recorder(keras.callbacks.Callback):
    """Keeps the trainable weights after the first step and every step's logs."""

    def __init__(self):
        super().__init__()
        self.logs, self.after_first = [], None

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(v) for k, v in logs.items()})
        if batch == 0:
            self.after_first = [np.array(w) for w in self.model.trainable_weights]


def main(out_dir, replicas, cases):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 4, devices
    # One strategy per process: a second one over the same devices reuses its
    # collective keys and clashes with the first one's collectives.
    strategies = {f"r{replicas}": distribute.get_strategy("mirrored",
                                                          devices=devices[:replicas])}
    if replicas == 1:
        strategies["none"] = tf.distribute.get_strategy()
    for case in cases:
        keras.utils.set_random_seed(0)
        reference = build(case)
        reference(keras.ops.zeros((2, 8, 8, 1)))
        initial = reference.get_weights()
        x, y = data(case)
        for label, strategy in strategies.items():
            with strategy.scope():
                model = build(case)
                model(keras.ops.zeros((2, 8, 8, 1)))
                model.set_weights(initial)
                model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
            before = [np.array(w) for w in model.trainable_weights]
            recorder = _Recorder()
            model.fit(x, y, batch_size=GLOBAL_BATCH, shuffle=False, verbose=0,
                      callbacks=[recorder])
            # Plain SGD: the first step's gradient is (before - after) / learning rate.
            out = {f"grad:{i}": (b - a) / LEARNING_RATE
                   for i, (b, a) in enumerate(zip(before, recorder.after_first))}
            out.update({f"weight:{i}": np.array(w) for i, w in enumerate(model.weights)})
            out.update({f"metric:{k}": np.array([logs[k] for logs in recorder.logs])
                        for k in recorder.logs[0]})
            if case == "linear":  # Linear evaluation's reported numbers.
                scores = model.evaluate(x, y, batch_size=GLOBAL_BATCH, verbose=0,
                                        return_dict=True)
                out.update({f"metric:eval_{k}": np.array(v) for k, v in scores.items()})
            out["names"] = np.array([w.path for w in model.weights])
            out["replicas"] = np.array(strategy.num_replicas_in_sync)
            np.savez(os.path.join(out_dir, f"{case}_{label}.npz"), **out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:] or ["supcon", "simclr", "swav", "linear"])
