"""NNCLR's loss against its float64 NumPy statement (tests/ssl_reference.py): value,
gradient, the nearest-neighbour search over the written rows only, the stop-gradient
through the NN, and bad input."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from _gradient import gradient
from ssl_reference import nnclr_reference
from supcon_tf.losses import NNCLRLoss, nearest_neighbours, nnclr_loss
from tolerance import assert_close

RNG = np.random.default_rng(0)


def _unit(shape):
    x = RNG.standard_normal(shape)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


def _case(batch=6, views=2, dim=5, size=10):
    z = RNG.standard_normal((batch, views, dim)).astype("float32")
    p = RNG.standard_normal((batch, views, dim)).astype("float32")
    return z, p, _unit((size, dim))


def test_hand_value():
    # NN(z1) = (e1, e2), NN(z2) = (e2, e1); p1 = p2 = (e1, e2); t = 0.1. L(NN1, p2) puts
    # each anchor on its own prediction: log(1 + e^-10); L(NN2, p1) on the other one:
    # log(1 + e^10) = 10 + log(1 + e^-10). Per sample: their mean.
    support = np.eye(2, dtype="float32")
    z = np.array([[[2.0, 0.5], [0.2, 1.0]], [[0.1, 3.0], [1.0, 0.0]]], "float32")
    p = np.array([[[1.0, 0.0], [3.0, 0.0]], [[0.0, 2.0], [0.0, 1.0]]], "float32")
    expected = 5.0 + math.log1p(math.exp(-10.0))
    assert_close(ops.convert_to_numpy(nnclr_loss(z, p, support)), [expected] * 2, terms=2,
                 magnitude=10.0)


@pytest.mark.parametrize("views, written", [(2, 10), (2, 4), (3, 7), (2, 0)])
def test_matches_reference(views, written):
    z, p, support = _case(views=views)
    mask = np.arange(10) < written
    expected = nnclr_reference(z, p, support, mask)
    got = ops.convert_to_numpy(nnclr_loss(z, p, support, mask))
    assert_close(got, expected, terms=6 * 5, magnitude=10.0)
    loss = NNCLRLoss(temperature=0.1)(None, dict(projection=z, prediction=p, support=support,
                                                 support_mask=mask))
    assert_close(float(loss), expected.mean(), terms=6 * 6 * 5, magnitude=10.0)
    # Another temperature is another value.
    assert not np.allclose(ops.convert_to_numpy(nnclr_loss(z, p, support, mask,
                                                           temperature=0.5)), expected)


def test_nearest_neighbour_is_searched_among_written_rows_only():
    support = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], "float32")
    z = np.array([[0.9, 0.1], [0.1, 0.9]], "float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(nearest_neighbours(z, support)),
                                  support[[0, 2]])
    mask = np.array([False, True, True])
    np.testing.assert_array_equal(ops.convert_to_numpy(nearest_neighbours(z, support, mask)),
                                  support[[1, 2]])
    # Nothing written yet: z itself, normalized.
    got = ops.convert_to_numpy(nearest_neighbours(z, support, np.zeros(3, bool)))
    assert_close(got, z / np.linalg.norm(z, axis=-1, keepdims=True), terms=2)


@pytest.mark.parametrize("written", [10, 0])
def test_gradient_reaches_predictions_only(written):
    z, p, support = _case(batch=4)
    mask = np.arange(10) < written
    weights = RNG.random(4).astype("float32")
    # The NN is a stop-gradient (also where it falls back to z itself).
    g_z = gradient(lambda x: nnclr_loss(x, p, support, mask), z, weights)
    np.testing.assert_array_equal(g_z, np.zeros_like(g_z))
    g_p = gradient(lambda x: nnclr_loss(z, x, support, mask), p, weights)
    h, p64, expected = 1e-6, p.astype("float64"), np.zeros(p.shape)
    for idx in np.ndindex(p.shape):
        up, down = p64.copy(), p64.copy()
        up[idx] += h
        down[idx] -= h
        expected[idx] = (np.dot(nnclr_reference(z, up, support, mask), weights)
                         - np.dot(nnclr_reference(z, down, support, mask), weights)) / (2 * h)
    assert np.abs(g_p).max() > 1e-2
    assert_close(g_p, expected, terms=4 * 2 * 5, magnitude=10.0)


@pytest.mark.parametrize("make, match", [
    (lambda z, p, q: nnclr_loss(z[:, :1], p[:, :1], q), "num_views >= 2"),
    (lambda z, p, q: nnclr_loss(z, p[:, :, :4], q), "must match"),
    (lambda z, p, q: nnclr_loss(z, p, q[:, :4]), "`support` feature size"),
    (lambda z, p, q: nnclr_loss(z, p, q, np.ones(3, bool)), "`support_mask` length"),
    (lambda z, p, q: nnclr_loss(np.where(z > 1, np.nan, z), p, q), "must be finite"),
    (lambda z, p, q: nnclr_loss(z, p, q, temperature=0.0), "temperature"),
    (lambda z, p, q: NNCLRLoss()(None, dict(projection=z, prediction=p)), "support"),
])
def test_bad_input_raises(make, match):
    z, p, support = _case()
    with pytest.raises(ValueError, match=match):
        make(z, p, support)


def test_loss_serialization_round_trip():
    loss = NNCLRLoss(temperature=0.2)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is NNCLRLoss and restored.get_config() == loss.get_config()
