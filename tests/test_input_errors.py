"""Bad input to the library's entry points: a ValueError naming the parameter, never a
silent NaN, a bare `could not convert`, or an error from deep inside TensorFlow."""

import keras
import numpy as np
import pytest

from supcon_tf import encoders, heads, methods, optimizers, views
from supcon_tf.losses import SimCLRLoss, SupConLoss, contrastive_loss
from supcon_tf.methods import NonFiniteLossError
from tolerance import assert_close

RNG = np.random.default_rng(0)


def _features(batch=4, num_views=2, dim=3):
    f = RNG.normal(size=(batch, num_views, dim)).astype("float32")
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def _views(n=32):
    return RNG.random((n, 2, 8, 8, 1)).astype("float32"), RNG.integers(0, 4, n)


def _model(cls=methods.SupCon):
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    model = cls(encoder, heads.ProjectionHead(hidden_dims=(16,), output_dim=8))
    model.compile(optimizer="sgd")
    return model


# ---------------------------------------------------------------- the loss function

@pytest.mark.parametrize("labels, message", [
    (np.array([0.5, 1.2, 2.0, 3.0]), "must have an integer dtype; received dtype float64"),
    (np.array([0.0, 1.0, 0.0, 1.0], "float32"), "must have an integer dtype"),
    (np.array([[0, 2], [1, 0], [1, 0], [0, 1]]), "must hold only 0 and 1; received [2]"),
    (np.array([[0.5, 0.5], [1, 0], [1, 0], [0, 1]]), "must hold only 0 and 1"),
    (np.array([0, -1, 1, 1]), "must be non-negative"),
    (np.array([0, 1, 1]), "`labels` batch size (3) must equal"),
])
def test_loss_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError) as info:
        contrastive_loss(_features(), labels)
    assert message in str(info.value)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_loss_rejects_non_finite_features(value):
    features = _features()
    features[1, 0, 2] = value
    with pytest.raises(ValueError, match=r"`features` must be finite; received 1 NaN"):
        contrastive_loss(features, np.array([0, 1, 0, 1]))


def test_loss_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="`features` must hold at least one sample"):
        contrastive_loss(np.zeros((0, 2, 3), "float32"))


@pytest.mark.parametrize("temperature, message", [
    ("0.1", "`temperature` must be a number; received temperature='0.1' (str)"),
    (None, "`temperature` must be a number"),
    (True, "`temperature` must be a number"),
    (0.0, "`temperature` must be > 0"),
    (-0.5, "`temperature` must be > 0"),
    (float("nan"), "`temperature` must be finite"),
])
def test_loss_rejects_bad_temperatures(temperature, message):
    for build in (lambda: contrastive_loss(_features(), temperature=temperature),
                  lambda: SupConLoss(temperature=temperature),
                  lambda: SimCLRLoss(temperature=temperature)):
        with pytest.raises(ValueError) as info:
            build()
        assert message in str(info.value)


def test_loss_class_checks_ids_before_keras_casts_them():
    features = _features()
    value = SupConLoss()(np.array([0, 1, 0, 1]), features)
    expected = contrastive_loss(features, np.array([0, 1, 0, 1]))
    assert_close(value, np.mean(keras.ops.convert_to_numpy(expected)), terms=4)
    with pytest.raises(ValueError, match="integer dtype"):
        SupConLoss()(np.array([0.5, 1, 0, 1]), features)


# ------------------------------------------------------------- constructors' types

@pytest.mark.parametrize("build, message", [
    (lambda: heads.LinearHead("ten"), "`num_classes` must be an integer >= 1; received "
                                      "num_classes='ten' (str)"),
    (lambda: methods.LinearClassifier(encoders.get("small_cnn", input_shape=(8, 8, 1)),
                                      num_classes="ten"), "`num_classes` must be an integer"),
    (lambda: methods.LinearClassifier(encoders.get("small_cnn", input_shape=(8, 8, 1)),
                                      num_classes=1), "`num_classes` must be an integer >= 2"),
    (lambda: heads.ProjectionHead(output_dim="128"), "`output_dim` must be an integer"),
    (lambda: heads.ProjectionHead(hidden_dims=(16, 0)), "`hidden_dims[1]` must be an integer >= 1"),
    (lambda: heads.ProjectionHead(output_dim=2.5), "`output_dim` must be an integer"),
    (lambda: views.ColorJitter(brightness="a lot"), "`brightness` must be a number"),
    (lambda: optimizers.LARS(momentum="0.9"), "`momentum` must be a number"),
    (lambda: optimizers.WarmupCosine(0.1, "100", 10), "`total_steps` must be a number > 0; received total_steps='100'"),
])
def test_constructors_name_the_parameter(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)


# ----------------------------------------------------------------------- fit

def test_supcon_without_labels_says_to_use_simclr():
    x, _ = _views()
    with pytest.raises(ValueError, match="needs labels"):
        _model().fit(x, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="use SimCLR"):  # Also straight into the step.
        _model().train_on_batch(x[:16])
    _model(methods.SimCLR).fit(x, batch_size=16, verbose=0)  # SimCLR needs none.


@pytest.mark.parametrize("mutate, message", [
    (lambda x, y: (x, y.astype("float32") + 0.5), "integer dtype; received dtype float32"),
    (lambda x, y: (x, y[:30]), "received 30 labels for 32 samples"),
    (lambda x, y: (x[:0], y[:0]), "`x` of `SupCon.fit` is empty"),
    (lambda x, y: (np.where(np.arange(32)[:, None, None, None, None] == 3, np.nan, x), y),
     "must be finite; it holds 128 NaN"),
    (lambda x, y: (x, np.eye(4)[y] * 2), "must hold only 0 and 1"),
])
def test_fit_rejects_bad_arrays(mutate, message):
    x, y = mutate(*_views())
    with pytest.raises(ValueError) as info:
        _model().fit(x, y, batch_size=16, verbose=0)
    assert message in str(info.value)
    assert "`labels`" in str(info.value) or "`x`" in str(info.value) or "`y`" in str(info.value)


def test_linear_classifier_rejects_labels_out_of_range():
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    model = methods.LinearClassifier(encoder, num_classes=3)
    model.compile(optimizer="sgd")
    images = RNG.random((8, 8, 8, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"class ids in \[0, 3\) .* maximum of 3"):
        model.fit(images, np.array([0, 1, 2, 3, 0, 1, 2, 0]), verbose=0)


@pytest.mark.parametrize("cls", [methods.SupCon, methods.SimCLR])
def test_nan_images_in_a_dataset_stop_fit_at_their_step(cls):
    """A NaN image reaches the step (no array check on a dataset): the loss is NaN, not a
    finite number from masked values, and `fit` stops at that step with a message."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data input")
    x, y = _views()
    x[20] = np.nan  # Batch 2 of 16.
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = _model(cls)
    before = [np.array(w) for w in model.weights]
    with pytest.raises(NonFiniteLossError, match="Training stopped at step 2: the loss is nan"):
        model.fit(ds, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in before)


def test_nan_loss_guard_runs_before_other_callbacks():
    """The guard is the first callback of the step, so a checkpoint callback never sees it."""
    x, y = _views()
    x[0, 0, 0, 0, 0] = np.inf
    seen = []

    class Saver(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model = _model()
    model.check_finite = True
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data input")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(NonFiniteLossError, match="step 1"):
        model.fit(ds, verbose=0, callbacks=[Saver()])
    assert seen == []
