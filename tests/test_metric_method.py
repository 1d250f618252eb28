"""method="metric": training with each metric loss, proxies, serialization (any backend)."""

import os

import keras
import numpy as np
import pytest

from supcon_tf import encoders, losses, methods
from supcon_tf.heads import ProjectionHead
from tolerance import assert_close

RNG = np.random.default_rng(0)
LABELS = np.tile(np.arange(4), 8)
VIEWS = (RNG.random((32, 1, 8, 8, 1)) + LABELS[:, None, None, None, None] / 4).astype("float32")


def build(loss):
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    model = methods.MetricLearning(encoder, ProjectionHead(hidden_dims=(16,), output_dim=8),
                                   loss=loss)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


@pytest.mark.parametrize("loss", [losses.TripletLoss(), losses.MultiSimilarityLoss(),
                                  losses.CircleLoss(gamma=16.0), losses.SupConLoss(),
                                  losses.ProxyAnchorLoss(4, lr_multiplier=10.0)],
                         ids=lambda loss: type(loss).__name__)
def test_fits_one_view_and_round_trips(loss, tmp_path):
    keras.utils.set_random_seed(0)
    model = build(loss)
    history = model.fit(VIEWS, LABELS, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all()
    path = os.path.join(tmp_path, "metric.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored.method_loss) is type(loss)
    assert restored.method_loss.get_config() == loss.get_config()
    for name in ("projection", "representation"):
        assert_close(restored(VIEWS[:4])[name], model(VIEWS[:4])[name], terms=16)
    if isinstance(loss, losses.ProxyAnchorLoss):
        assert restored.proxies is not None
        assert_close(restored.proxies.proxies, model.proxies.proxies)


def test_loss_sees_embeddings_of_every_view_with_repeated_labels():
    model = build(losses.TripletLoss())
    views = np.concatenate([VIEWS, VIEWS[::-1]], axis=1)[:8]
    y_pred = model(views, training=False)
    flat = keras.ops.reshape(y_pred["projection"], (16, 8))
    want = losses.TripletLoss()(np.repeat(LABELS[:8], 2), flat)
    assert_close(model.compute_method_loss(keras.ops.convert_to_tensor(LABELS[:8]), y_pred),
                 want, terms=16)


def test_proxies_train_at_the_multiplied_learning_rate():
    """Plain SGD: with lr_multiplier m the proxies' step is m times the step at m = 1."""
    steps = []
    for multiplier in (1.0, 10.0):
        keras.utils.set_random_seed(0)
        model = build(losses.ProxyAnchorLoss(4, lr_multiplier=multiplier))
        model(VIEWS[:2])
        before = keras.ops.convert_to_numpy(model.proxies.proxies).copy()
        model.fit(VIEWS[:16], LABELS[:16], batch_size=16, epochs=1, verbose=0, shuffle=False)
        steps.append(keras.ops.convert_to_numpy(model.proxies.proxies) - before)
    assert np.abs(steps[0]).max() > 1e-6
    assert_close(steps[1], 10.0 * steps[0], terms=16, magnitude=np.abs(steps[1]).max())


def test_metric_method_is_registered_with_one_view():
    assert methods.METHODS.lookup("metric") is methods.MetricLearning
    assert methods.MetricLearning.min_views == 1
    cls, kwargs = methods.MetricLearning.resolve_loss({"name": "circle", "gamma": 4.0})
    assert cls is losses.CircleLoss and kwargs == {"gamma": 4.0}
    assert methods.MetricLearning.resolve_loss({})[0] is losses.MultiSimilarityLoss


def test_needs_integer_labels():
    model = build(losses.TripletLoss())
    with pytest.raises(ValueError, match="needs labels"):
        model.fit(VIEWS, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="must have an integer dtype"):
        losses.TripletLoss()(LABELS.astype("float32"), VIEWS[:, 0, 0, :, 0])
