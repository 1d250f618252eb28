"""The online linear probe: isolated from the encoder's gradients, reported, serializable."""

import copy

import keras
import numpy as np
import pytest
from keras import ops

from supcon_tf import encoders, methods
from supcon_tf.evaluation import OnlineProbe
from supcon_tf.heads import LinearHead, ProjectionHead


def class_data(n=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    images = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    for c in range(classes):
        images[labels == c, :, 2 * c:2 * c + 3] += 0.7
    views = np.stack([images, images[:, ::-1] + 0.05], axis=1)
    return views, labels


def twin_models(probe=3, method=methods.SupCon):
    """The same encoder and head (shared objects) with and without a probe."""
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    head = ProjectionHead(output_dim=8)
    return method(encoder, head, probe=probe), method(encoder, head)


def gradients(model, views, labels):
    """d(compute_loss)/d(trainable variables) as NumPy, in model.trainable_variables order."""
    views, labels = ops.convert_to_tensor(views), ops.convert_to_tensor(labels)
    if not model.built:
        model(views)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = model.compute_loss(y=labels, y_pred=model(views, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
    elif keras.backend.backend() == "jax":
        import jax

        # What Keras' JAX train step differentiates: stateless call, then compute_loss.
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        metric_vars = [v.value for v in model.metrics_variables]

        def loss_fn(trainable):
            y_pred, nt = model.stateless_call(trainable, non_trainable, views, training=True)
            loss, _ = model.stateless_compute_loss(trainable, nt, metric_vars, y=labels,
                                                   y_pred=y_pred)
            return loss

        grads = jax.jit(jax.grad(loss_fn))(trainable)
    else:
        pytest.skip(f"no gradient helper for backend {keras.backend.backend()}")
    return [np.zeros(v.shape) if g is None else ops.convert_to_numpy(g)
            for v, g in zip(model.trainable_variables, grads)]


def encoder_gradients(model, views, labels):
    grads = gradients(model, views, labels)
    ids = {id(v) for v in model.encoder.trainable_variables}
    return [g for v, g in zip(model.trainable_variables, grads) if id(v) in ids]


@pytest.mark.parametrize("method", [methods.SupCon, methods.SimCLR])
def test_probe_leaves_encoder_gradients_unchanged(method):
    with_probe, without = twin_models(method=method)
    views, labels = class_data()
    expected = encoder_gradients(without, views, labels)
    for got, want in zip(encoder_gradients(with_probe, views, labels), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    assert any(np.abs(w).max() > 0 for w in expected)
    probe_ids = {id(v) for v in with_probe.probe.trainable_variables}
    probe_grads = [g for v, g in zip(with_probe.trainable_variables,
                                     gradients(with_probe, views, labels)) if id(v) in probe_ids]
    assert len(probe_grads) == 2 and all(np.abs(g).max() > 0 for g in probe_grads)


def test_a_probe_without_stop_gradient_would_change_them(monkeypatch):
    # The control for the test above: the same comparison notices a leaking probe.
    monkeypatch.setattr(OnlineProbe, "call",
                        lambda self, rep: self.head.dense(rep[:, self.view]))
    with_probe, without = twin_models()
    views, labels = class_data()
    diffs = [np.abs(a - b).max() for a, b in zip(encoder_gradients(with_probe, views, labels),
                                                  encoder_gradients(without, views, labels))]
    assert max(diffs) > 1e-4


def test_one_sgd_step_moves_the_encoder_as_without_probe():
    # Separate objects with equal starting weights, each trained one step by fit's machinery.
    with_probe, _ = twin_models()
    _, without = twin_models()
    views, labels = class_data()
    with_probe(views), without(views)
    without.encoder.set_weights(with_probe.encoder.get_weights())
    without.head.set_weights(with_probe.head.get_weights())
    before = with_probe.encoder.get_weights()
    for model in (with_probe, without):
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        model.train_on_batch(views, labels)
    after = with_probe.encoder.get_weights()
    for a, b in zip(after, without.encoder.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - c).max() for a, c in zip(after, before)) > 1e-4


def test_fit_and_evaluate_report_probe_metrics():
    model, _ = twin_models()
    views, labels = class_data(48)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(views, labels, batch_size=16, epochs=2, verbose=0,
                        validation_data=(views, labels))
    for key in ("probe_top1", "probe_loss", "val_probe_top1", "val_probe_loss"):
        assert len(history.history[key]) == 2
    logs = model.evaluate(views, labels, batch_size=48, return_dict=True, verbose=0)
    logits = ops.convert_to_numpy(model(views, training=False)["probe_logits"])
    assert logs["probe_top1"] == pytest.approx(np.mean(logits.argmax(-1) == labels))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    cross_entropy = -log_probs[np.arange(len(labels)), labels].mean()
    assert logs["probe_loss"] == pytest.approx(cross_entropy, rel=1e-4)
    without_probe = model.method_loss(labels, model(views)["projection"])
    assert logs["loss"] == pytest.approx(float(without_probe) + cross_entropy, rel=1e-4)


def test_probe_without_labels_is_an_error():
    model, _ = twin_models(method=methods.SimCLR)  # SupCon itself already needs labels.
    views, _ = class_data(16)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="online linear probe needs labels"):
        model.fit(views, batch_size=16, epochs=1, verbose=0)


def test_probe_rejects_multi_hot_labels():
    model, _ = twin_models()
    views, labels = class_data(16)
    multi_hot = np.eye(3, dtype="float32")[labels]
    multi_hot[:, 0] = 1.0
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"needs class ids \[batch\]"):
        model.train_on_batch(views, multi_hot)


@pytest.mark.parametrize("probe", [4, LinearHead(4, stop_gradient=True), OnlineProbe(4)])
def test_probe_forms(probe):
    model, _ = twin_models(probe=probe)
    assert isinstance(model.probe, OnlineProbe) and model.probe.num_classes == 4
    views, _ = class_data(5)
    assert tuple(model(views)["probe_logits"].shape) == (5, 4)


@pytest.mark.parametrize("bad", [True, "linear", 0])
def test_bad_probe(bad):
    with pytest.raises(ValueError, match="probe|num_classes"):
        twin_models(probe=bad)


def test_probe_serialization_round_trip(tmp_path):
    model, _ = twin_models()
    views, labels = class_data(8)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.train_on_batch(views, labels)
    config = model.get_config()
    assert config["probe"]["config"]["num_classes"] == 3
    clone = methods.SupCon.from_config(copy.deepcopy(config))
    assert isinstance(clone.probe, OnlineProbe) and clone.probe.num_classes == 3
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(views)["probe_logits"]),
        ops.convert_to_numpy(model(views)["probe_logits"]), rtol=1e-5, atol=1e-6)
    # A config written before the probe existed still loads (no probe).
    del config["probe"]
    assert methods.SupCon.from_config(config).probe is None
