"""SavedModels / TF Hub modules as encoders: `encoders.get("hub:PATH")`."""


import keras
import numpy as np
import pytest

if keras.backend.backend() != "tensorflow":
    pytest.skip("Hub encoders need the TensorFlow backend", allow_module_level=True)

from supcon_tf import encoders, export, methods  # noqa: E402
from supcon_tf.heads import ProjectionHead  # noqa: E402

import _export_helpers as helpers  # noqa: E402  (tests/ is on sys.path: conftest.py)
from tolerance import assert_close  # noqa: E402

FORWARD_TERMS = helpers.FORWARD_TERMS  # tests/_export_helpers.py


@pytest.fixture(scope="module")
def run():
    return helpers.trained_run()


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_exported_module_gives_the_original_linear_evaluation(run):
    images, labels = helpers.data(n=16, seed=7)
    encoder = encoders.get("hub:" + run.export_dir)  # frozen by default
    assert encoder.input_shape == (None, *helpers.IMAGE_SHAPE)
    assert len(encoder.weights) == len(run.encoder.weights) and not encoder.trainable_weights
    assert_close(encoder.predict(images, verbose=0),
                 run.encoder.predict(images, verbose=0), dtype="float32", terms=FORWARD_TERMS)
    classifier = methods.LinearClassifier(encoder, num_classes=len(helpers.CLASS_NAMES))
    classifier(images)
    classifier.head.set_weights(run.classifier.head.get_weights())
    assert_close(numpy(classifier(images)), numpy(run.classifier(images)),
                 dtype="float32", terms=FORWARD_TERMS)
    frozen = [numpy(w).copy() for w in encoder.weights]
    head = [numpy(w).copy() for w in classifier.head.weights]
    classifier.compile(optimizer=keras.optimizers.SGD(0.5))
    classifier.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    assert all(np.array_equal(a, numpy(w)) for a, w in zip(frozen, encoder.weights))
    assert not any(np.array_equal(a, numpy(w)) for a, w in zip(head, classifier.head.weights))


def test_trainable_module_trains_on_with_supcon(run):
    images, labels = helpers.data(n=16, seed=8)
    encoder = encoders.get("hub:" + run.export_dir, trainable=True,
                           input_shape=helpers.IMAGE_SHAPE)
    layer = encoder.get_layer("hub_module")
    assert len(encoder.trainable_weights) == 8  # conv1, bn1 (2), conv2, bn2 (2), dense (2)
    before = [numpy(w).copy() for w in encoder.weights]
    model = methods.SupCon(encoder, ProjectionHead(output_dim=8))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(helpers.views(images), labels, batch_size=8, epochs=1, verbose=0)
    # Every weight moved: the trainable ones by SGD, BatchNorm statistics in training mode.
    assert not any(np.array_equal(b, numpy(w)) for b, w in zip(before, encoder.weights))
    # The Keras weights are the module's own variables, not copies.
    assert sorted(map(id, (w.value for w in layer.weights))) == sorted(
        map(id, layer._module.variables))


def test_signature_and_output_key(run):
    images, _ = helpers.data(n=4, seed=9)
    ref = helpers.reference_outputs(run, images)
    encoder = encoders.get("hub:" + run.export_dir, signature="serving_default",
                           output_key="embeddings")
    assert_close(numpy(encoder(images)), ref["embeddings"], dtype="float32", terms=FORWARD_TERMS)
    with pytest.raises(ValueError, match="`output_key` must be one of 'embeddings', 'logits', "
                                         "'probabilities', 'projection', 'unnorm.*'logit'"):
        encoders.get("hub:" + run.export_dir, signature="serving_default", output_key="logit")
    encoder = encoders.get("hub:" + run.export_dir, signature="project")  # its only output
    assert_close(numpy(encoder(images)), ref["projection"], dtype="float32", terms=FORWARD_TERMS)


def test_bad_input(run, tmp_path):
    with pytest.raises(ValueError, match="holds no saved_model.pb"):
        encoders.get("hub:" + str(tmp_path))
    with pytest.raises(ValueError, match="no signature 'nope'; it has: 'classify', 'classify_uint8', 'embed'"):
        encoders.get("hub:" + run.export_dir, signature="nope")
    with pytest.raises(ValueError, match=r"must match the module's image shape \(8, 8, 1\)"):
        encoders.get("hub:" + run.export_dir, input_shape=(16, 16, 1))
    with pytest.raises(ValueError, match="Unknown encoder 'hub'"):
        encoders.get("hub")


def test_keras_file_with_a_hub_encoder_needs_unsafe_loading(run, tmp_path):
    images, _ = helpers.data(n=4, seed=10)
    encoder = encoders.get("hub:" + run.export_dir)
    classifier = methods.LinearClassifier(encoder, num_classes=3)
    expected = numpy(classifier(images))
    path = export.save_keras(tmp_path / "hub.keras", classifier)
    with pytest.raises(ValueError, match="safe_mode=False"):
        export.load_keras(path, compile=False)
    loaded = export.load_keras(path, compile=False, safe_mode=False)
    assert_close(numpy(loaded(images)), expected, dtype="float32", terms=FORWARD_TERMS)
