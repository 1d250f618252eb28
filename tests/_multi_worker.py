"""Worker script for tests/test_multi_worker.py, and the training both sides share.

`python tests/_multi_worker.py OUT_FILE` (with TF_CONFIG set) joins a
MultiWorkerMirroredStrategy cluster, trains SupCon with synchronized BatchNorm for
a few steps on fixed global batches and saves the per-step losses and final weights.
The test runs the same `train` without a strategy and compares.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

GLOBAL_BATCH = 8
STEPS = 3


def data():
    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * STEPS
    labels = rng.integers(0, 3, size=n)
    images = rng.random((n, 8, 8, 1)) + labels[:, None, None, None] / 3
    views = np.stack([images + 0.1 * rng.standard_normal(images.shape) for _ in range(2)], 1)
    return views.astype("float32"), labels


def train(strategy):
    """Losses per step and final weights of SupCon trained under `strategy`."""
    import tensorflow as tf

    from supcon_tf import encoders, methods, optimizers
    from supcon_tf.heads import ProjectionHead

    keras.utils.set_random_seed(0)
    with strategy.scope():
        encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8,
                               sync_batch_norm=True)
        model = methods.SupCon(encoder, ProjectionHead(output_dim=4, sync_batch_norm=True))
        model.compile(optimizer=optimizers.get("lars", learning_rate=0.1, weight_decay=1e-4))
    views, labels = data()
    dataset = tf.data.Dataset.from_tensor_slices((views, labels)).batch(GLOBAL_BATCH)
    losses = []
    logger = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    model.fit(dataset, epochs=1, shuffle=False, verbose=0, callbacks=[logger])
    return np.array(losses), [np.array(w) for w in model.weights]


def main(out_file):
    from supcon_tf import distribute

    strategy = distribute.get_strategy("multi_worker")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    losses, weights = train(strategy)
    np.savez(out_file, losses=losses, *weights)


if __name__ == "__main__":
    main(sys.argv[1])
