"""KNNMonitor and the online probe under a 2-replica MirroredStrategy (TensorFlow, subprocess)."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from supcon_tf import encoders, evaluation, methods
    from supcon_tf.heads import ProjectionHead
    from tolerance import assert_close

    rng = np.random.default_rng(0)
    def data(n):
        labels = rng.integers(0, 3, n)
        images = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
        for c in range(3):
            images[labels == c, :, 2 * c:2 * c + 3] += 0.7
        return images, labels

    images, labels = data(64)
    reference, heldout = data(50), data(21)  # Odd sizes: partial batches across replicas.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        # Synchronized BatchNorm: every replica holds the same moving statistics, so
        # inference on any replica equals inference off-strategy.
        encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16,
                               sync_batch_norm=True)
        model = methods.SupCon(encoder, ProjectionHead(output_dim=8), probe=3)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
    views = np.stack([images, images[:, :, ::-1]], axis=1)
    train = tf.data.Dataset.from_tensor_slices((views, labels)).batch(16, drop_remainder=True)
    shuffled = tf.data.Dataset.from_tensor_slices(heldout).shuffle(32, seed=0).batch(8)
    monitor = evaluation.KNNMonitor(reference, shuffled, k=5, batch_size=8)
    history = model.fit(train, epochs=1, verbose=0, callbacks=[monitor])

    # Sample ids as labels: each output must sit next to its own sample's id.
    ids = tf.data.Dataset.from_tensor_slices((heldout[0], np.arange(21))).shuffle(32).batch(8)
    emb, got_ids = evaluation.predict_with_labels(encoder, ids, batch_size=8)
    assert emb.shape == (21, 16), emb.shape  # Not duplicated per replica.
    assert sorted(got_ids.tolist()) == list(range(21))
    single = keras.ops.convert_to_numpy(encoder(heldout[0], training=False))
    # float32, per sample in another batch: conv2's 3x3x8 products, a pool over 4x4, a dense of 16.
    assert_close(emb, single[got_ids], dtype="float32", terms=3 * 3 * 8 + 4 * 4 + 16)
    expected = evaluation.knn_accuracy(single, heldout[1],
                                       keras.ops.convert_to_numpy(encoder(reference[0])),
                                       reference[1], k=5)
    assert_close(history.history["knn_top1"][0], expected, dtype="float32", terms=21)  # mean of 21
    assert 0.0 <= history.history["probe_top1"][0] <= 1.0
    print("OK")
""")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="tf.distribute is TensorFlow-only")
def test_monitor_and_probe_under_mirrored_strategy():
    pytest.importorskip("tensorflow")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "OK" in result.stdout, (
        result.stdout[-3000:] + result.stderr[-3000:])
