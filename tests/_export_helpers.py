"""Shared by the export tests: one small trained run, exported once per test process."""

import atexit
import functools
import os
import shutil
import tempfile
import types

import keras
import numpy as np

IMAGE_SHAPE = (8, 8, 1)
# A float32 forward pass of one image through the exported small_cnn (widths 8, 16), head
# and classifier, here and in another graph: conv2's 3x3x8 products, a pool over at most
# 8x8, dense layers of at most 16 inputs (tests/tolerance.py terms).
FORWARD_TERMS = 3 * 3 * 8 + 8 * 8 + 3 * 16
CLASS_NAMES = ("zero", "one", "two")
CONFIG = {"method": "supcon", "encoder": {"name": "small_cnn", "widths": (8, 16)}, "lr": 0.1}


def data(n=32, seed=0):
    """Float images in [0, 1] whose brightness depends on the class, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_NAMES), size=n)
    images = 0.6 * rng.random((n, *IMAGE_SHAPE)) + 0.2 * labels[:, None, None, None]
    return images.astype("float32"), labels


def views(images, seed=1):
    rng = np.random.default_rng(seed)
    noisy = [np.clip(images + 0.05 * rng.standard_normal(images.shape), 0, 1) for _ in range(2)]
    return np.stack(noisy, axis=1).astype("float32")


@functools.lru_cache(maxsize=None)
def trained_run():
    """SupCon (synchronized BatchNorm in encoder and head) then a linear classifier, exported."""
    from supcon_tf import encoders, export, methods
    from supcon_tf.heads import ProjectionHead

    keras.utils.set_random_seed(0)
    images, labels = data()
    encoder = encoders.get("small_cnn", input_shape=IMAGE_SHAPE, widths=(8, 16), dim=16,
                           sync_batch_norm=True)
    head = ProjectionHead(output_dim=8, sync_batch_norm=True)
    model = methods.SupCon(encoder, head)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(views(images), labels, batch_size=16, epochs=1, verbose=0)
    classifier = methods.LinearClassifier(encoder, num_classes=len(CLASS_NAMES))
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    classifier.fit(images, labels, batch_size=16, epochs=1, verbose=0)

    root = tempfile.mkdtemp(prefix="supcon_export_test_")
    atexit.register(shutil.rmtree, root, True)
    export_dir = export.export_saved_model(
        os.path.join(root, "export"), encoder=encoder, head=head,
        classifier_head=classifier.head, image_shape=IMAGE_SHAPE, class_names=CLASS_NAMES,
        config=CONFIG)
    return types.SimpleNamespace(encoder=encoder, head=head, model=model,
                                 classifier=classifier, export_dir=export_dir, root=root)


def reference_outputs(run, images):
    """The export's outputs, computed by the in-memory models (uint8 images scaled by 1/255)."""
    if images.dtype == np.uint8:
        images = images.astype("float32") / 255.0
    out = run.model(images[:, None], training=False)  # views [batch, 1, H, W, C]
    rep = keras.ops.convert_to_numpy(out["representation"])[:, 0]
    projection = keras.ops.convert_to_numpy(out["projection"])[:, 0]
    logits = keras.ops.convert_to_numpy(run.classifier(images, training=False))
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return {
        "unnormalized_embeddings": rep,
        "embeddings": rep / np.linalg.norm(rep, axis=-1, keepdims=True),
        "projection": projection,
        "logits": logits,
        "probabilities": exp / exp.sum(-1, keepdims=True),
    }


def digits_test_accuracy(export_dir):
    """(top-1, number of images) of an exported digits classifier on the digits test
    split: the number the command line reports as its linear evaluation."""
    import tensorflow as tf

    from supcon_tf import data

    loaded = tf.saved_model.load(export_dir)
    images, labels = zip(*data.load("digits", split="test")[0].as_numpy_iterator())
    images = np.stack(images).astype("float32") / 255.0
    logits = loaded.signatures["serving_default"](tf.constant(images))["logits"].numpy()
    return float(np.mean(logits.argmax(-1) == np.array(labels))), len(labels)


def run_tf1(export_dir, inputs):
    """{signature: {output: array}} from TF Serving's path: the TF1 session loader.

    `inputs` maps signature names to the array fed to their one input, `images`.
    """
    import tensorflow as tf

    results = {}
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        for name, images in inputs.items():
            signature = meta_graph.signature_def[name]
            fetches = {key: out.name for key, out in signature.outputs.items()}
            results[name] = session.run(fetches, {signature.inputs["images"].name: images})
    return results


def assert_informative(outputs):
    """Every output finite and not constant over the batch (a frozen NaN or zero fails)."""
    for key, value in outputs.items():
        value = np.asarray(value)
        assert np.all(np.isfinite(value)), f"{key} is not finite: {value}"
        assert value.shape[0] > 1 and np.any(np.ptp(value, axis=0) > 0), (
            f"{key} is the same for every image: {value}")
