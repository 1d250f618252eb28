"""Barlow Twins' and VICReg's losses against float64 NumPy statements of each paper and of
each released code (tests/redundancy_reference.py), value and gradient; the methods'
step on this backend; bad input. Run again on JAX by tests/test_backends.py."""

import keras
import numpy as np
import pytest
from keras import ops

from metric_reference import numeric_gradient
from redundancy_reference import (barlow_twins_code, barlow_twins_paper, over_view_pairs,
                                  vicreg_code, vicreg_paper)
from supcon_tf import encoders, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import BarlowTwinsLoss, VICRegLoss, barlow_twins_loss, vicreg_loss
from tolerance import assert_close

RNG = np.random.default_rng(0)
BATCH, DIM = 8, 5


def _embeddings(batch=BATCH, views=2, dim=DIM, seed=0):
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((batch, 1, dim))  # Correlated views, as training gives.
    return (shared + 0.5 * rng.standard_normal((batch, views, dim))).astype("float32")


def _gradient(fn, x):
    """d fn(x) / dx of a scalar fn on the current backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return tape.gradient(value, x).numpy()
    import jax

    return np.asarray(jax.grad(fn)(x))


def _terms(z):
    """A loss sums D x D entries, each a sum over the batch: batch x D^2 terms."""
    return z.shape[0] * z.shape[-1] ** 2 * z.shape[1] ** 2


# The implementation (keyword arguments) and the float64 statement it must equal.
FORMS = {
    "barlow_code": (barlow_twins_loss, dict(lambd=0.02),
                    lambda z: over_view_pairs(barlow_twins_code, z, lambd=0.02)),
    "barlow_code_scaled": (barlow_twins_loss, dict(lambd=0.0051, scale_loss=0.5),
                           lambda z: over_view_pairs(barlow_twins_code, z, scale_loss=0.5)),
    # The paper's Eq. 2 is the code's batch norm without its epsilon.
    "barlow_paper": (barlow_twins_loss, dict(lambd=0.02, epsilon=0.0),
                     lambda z: over_view_pairs(barlow_twins_paper, z, lambd=0.02)),
    "vicreg_code": (vicreg_loss, dict(), lambda z: over_view_pairs(vicreg_code, z)),
    # The paper's Eq. 6 with (lambda, mu, nu) = (25, 25, 1): weights (25 x dim, 50, 1) here.
    "vicreg_paper": (vicreg_loss, dict(invariance_weight=25.0 * DIM, variance_weight=50.0),
                     lambda z: over_view_pairs(vicreg_paper, z)),
}


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_loss_matches_reference(form, views):
    fn, kwargs, reference = FORMS[form]
    z = _embeddings(views=views)
    expected = reference(z)
    assert_close(float(fn(z, **kwargs)), expected, terms=_terms(z))


@pytest.mark.parametrize("form", sorted(FORMS))
def test_gradient_matches_reference(form):
    fn, kwargs, reference = FORMS[form]
    z = _embeddings()
    got = _gradient(lambda x: fn(x, **kwargs), z)
    expected = numeric_gradient(reference, z)
    assert np.abs(expected).max() > 1e-2
    assert_close(got, expected, terms=_terms(z), magnitude=np.abs(expected).max())


def test_barlow_twins_hand_values():
    # Columns centred and orthogonal: C = I for identical views (loss 0), C = -I for
    # opposite ones (each diagonal term (1 - (-1))^2 = 4).
    a = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], "float32")
    same, opposite = np.stack([a, a], 1), np.stack([a, -a], 1)
    assert_close(float(barlow_twins_loss(same, epsilon=0.0)), 0.0, terms=16)
    assert_close(float(barlow_twins_loss(opposite, epsilon=0.0)), 8.0, terms=16)


def test_vicreg_hand_values():
    # Identical views of std 1 in both (uncorrelated) dimensions: only epsilon's nudge of
    # the std past 1 is left, and no hinge is active: loss 0.
    # Halved: std 1/2, variance term 25 x (1 - sqrt(1/4 + 1e-4)), covariance 0.
    a = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], "float32") * np.sqrt(3 / 4)
    assert_close(float(vicreg_loss(np.stack([a, a], 1))), 0.0, terms=16)
    half = np.stack([a, a], 1) / 2
    assert_close(float(vicreg_loss(half)), 25 * (1 - np.sqrt(0.25 + 1e-4)),
                 terms=16)


@pytest.mark.parametrize("loss, form", [(BarlowTwinsLoss(lambd=0.02), "barlow_code"),
                                        (VICRegLoss(), "vicreg_code")])
def test_loss_class_gives_the_global_loss(loss, form):
    z = _embeddings(batch=12)
    assert_close(float(loss(None, z)), FORMS[form][2](z), terms=_terms(z))
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


@pytest.mark.parametrize("make, match", [
    (lambda: barlow_twins_loss(np.zeros((4, 1, 3), "float32")), "at least 2 views"),
    (lambda: vicreg_loss(np.zeros((4, 3), "float32")), "rank 3"),
    (lambda: vicreg_loss(np.zeros((1, 2, 3), "float32")), "at least 2 samples"),
    (lambda: barlow_twins_loss(np.full((4, 2, 3), np.nan, "float32")), "must be finite"),
    (lambda: BarlowTwinsLoss(lambd=-1.0), "lambd"),
    (lambda: BarlowTwinsLoss(scale_loss=0.0), "scale_loss"),
    (lambda: VICRegLoss(epsilon=0.0), "epsilon"),
    (lambda: VICRegLoss(variance_weight="25"), "variance_weight"),
    (lambda: methods.VICReg(encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4,),
                                         dim=4), head=ProjectionHead((4,), 4)), "normalize"),
])
def test_bad_input_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", ["barlow_twins", "vicreg"])
def test_method_step_reports_the_loss_of_its_outputs(name):
    """One training step on this backend: the loss `fit` reports is the loss function of
    the model's projections of the batch (before the step updates the weights)."""
    keras.utils.set_random_seed(0)
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    model = methods.get(name, encoder=encoder,
                        head=ProjectionHead((8,), 6, normalize=False))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    views = RNG.random((BATCH, 2, 8, 8, 1)).astype("float32")
    projections = ops.convert_to_numpy(model(views, training=True)["projection"])
    want = float(model.method_loss(None, projections))
    got = model.train_on_batch(views, return_dict=True)["loss"]
    assert_close(got, want, terms=_terms(projections) * 8 * 8)
    assert np.isfinite(got) and got > 0
