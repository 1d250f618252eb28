"""SimSiam's loss and SwAV's Sinkhorn-Knopp and loss against float64 NumPy statements
(tests/ssl_reference.py), their gradients, the stop-gradient, and bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from _gradient import gradient
from ssl_reference import simsiam_reference, sinkhorn_reference, swav_reference
from supcon_tf.heads import Prototypes
from supcon_tf.losses import (SimSiamLoss, SwAVLoss, collapse_std, simsiam_loss,
                              sinkhorn_knopp, swav_loss)
from tolerance import assert_close

RNG = np.random.default_rng(0)


def _unit_scores(batch, views, k, dim=6):
    """Cosines of random unit features and unit prototypes, as SwAV's scores are."""
    f = RNG.standard_normal((batch, views, dim))
    f /= np.linalg.norm(f, axis=-1, keepdims=True)
    w = RNG.standard_normal((dim, k))
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    return (f @ w).astype("float32")


# --- SimSiam ---------------------------------------------------------------------------

def test_simsiam_hand_value():
    # p1 = z2 (cos 1), p2 orthogonal to z1 (cos 0): L = (-1 + 0) / 2.
    z = np.array([[[1.0, 0.0], [0.0, 2.0]]], "float32")
    p = np.array([[[0.0, 3.0], [0.0, 1.0]]], "float32")
    assert_close(ops.convert_to_numpy(simsiam_loss(p, z)), [-0.5], terms=2)


@pytest.mark.parametrize("views", [2, 3, 8])
def test_simsiam_matches_reference(views):
    z = RNG.standard_normal((5, views, 7)).astype("float32")
    p = RNG.standard_normal((5, views, 7)).astype("float32")
    expected = simsiam_reference(z, p)
    assert_close(ops.convert_to_numpy(simsiam_loss(p, z)), expected, terms=7 * views * views)
    assert_close(float(SimSiamLoss()(None, dict(prediction=p, target=z))), expected.mean(), terms=5 * 7 * views * views)


def test_simsiam_gradient_reaches_predictions_only():
    z = RNG.standard_normal((4, 2, 5)).astype("float32")
    p = RNG.standard_normal((4, 2, 5)).astype("float32")
    weights = RNG.random(4).astype("float32")
    # The stop-gradient branch: no gradient at all reaches the projections (targets).
    g_z = gradient(lambda x: simsiam_loss(p, x), z, weights)
    np.testing.assert_array_equal(g_z, np.zeros_like(g_z))
    # The predictions' gradient is that of the float64 reference (central differences).
    g_p = gradient(lambda x: simsiam_loss(x, z), p, weights)
    h, p64, expected = 1e-6, p.astype("float64"), np.zeros(p.shape)
    for idx in np.ndindex(p.shape):
        up, down = p64.copy(), p64.copy()
        up[idx] += h
        down[idx] -= h
        expected[idx] = (np.dot(simsiam_reference(z, up), weights)
                         - np.dot(simsiam_reference(z, down), weights)) / (2 * h)
    assert np.abs(g_p).max() > 1e-2
    assert_close(g_p, expected, terms=2 * 5, magnitude=1.0)


def test_collapse_std_is_zero_when_collapsed_and_one_over_sqrt_dim_when_spread():
    collapsed = np.tile(RNG.standard_normal((1, 1, 16)), (64, 2, 1)).astype("float32")
    assert_close(float(collapse_std(collapsed)), 0.0, terms=64)
    spread = RNG.standard_normal((4096, 16)).astype("float32")
    assert abs(float(collapse_std(spread)) - 16 ** -0.5) < 0.01


# --- SwAV -------------------------------------------------------------------------------

@pytest.mark.parametrize("batch, k", [(8, 5), (32, 12)])
def test_sinkhorn_matches_reference_and_equipartitions(batch, k):
    scores = _unit_scores(batch, 1, k)[:, 0]
    got = ops.convert_to_numpy(sinkhorn_knopp(scores, epsilon=0.05, iterations=3))
    expected = sinkhorn_reference(scores, 0.05, 3)
    # exp(s / 0.05) has relative rounding ~ 20 * eps of its exponent; 3 iterations of
    # sums over B and K.
    assert_close(got, expected, terms=20 * 3 * (batch + k))
    assert_close(got.sum(axis=1), np.ones(batch), terms=20 * 3 * (batch + k) * k)
    # Column sums approach the equal share B / K (closer with more iterations).
    many = sinkhorn_reference(scores, 0.05, 200)
    assert np.abs(many.sum(axis=0) - batch / k).max() < 1e-6 * batch
    share3 = np.abs(expected.sum(axis=0) - batch / k).max()
    share1 = np.abs(sinkhorn_reference(scores, 0.05, 1).sum(axis=0) - batch / k).max()
    assert share3 < share1
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


def test_sinkhorn_hand_value_two_by_two():
    # Scores favouring the diagonal: one iteration gives [[a, 1-a], [1-a, a]] with
    # a = e / (e + 1) for exp(s / eps) = [[e, 1], [1, e]] (already balanced).
    scores = np.array([[0.05, 0.0], [0.0, 0.05]], "float32")
    a = np.e / (np.e + 1)
    assert_close(ops.convert_to_numpy(sinkhorn_knopp(scores, 0.05, 1)),
                 [[a, 1 - a], [1 - a, a]], terms=20 * 4)


@pytest.mark.parametrize("views, assign", [(2, 2), (6, 2), (3, 1)])
def test_swav_loss_matches_reference(views, assign):
    scores = _unit_scores(16, views, 10)
    expected = swav_reference(scores, 0.1, 0.05, 3, assign)
    got = ops.convert_to_numpy(swav_loss(scores, 0.1, 0.05, 3, assign))
    assert_close(got, expected, terms=20 * 3 * 26 * views, magnitude=10.0)
    loss = SwAVLoss(assign_views=assign)
    assert_close(float(loss(None, scores)), expected.mean(), terms=20 * 3 * 26 * views * 16,
                 magnitude=10.0)


def test_sinkhorn_and_swav_loss_with_a_queue_match_reference():
    scores, queued = _unit_scores(8, 3, 5), _unit_scores(12, 2, 5).transpose(1, 0, 2)
    mask = np.arange(12) < 9  # Rows 9-11 not written yet: left out.
    got = ops.convert_to_numpy(sinkhorn_knopp(scores[:, 0], 0.05, 3, queued[0], mask))
    expected = sinkhorn_reference(np.concatenate([queued[0][:9], scores[:, 0]]))[-8:]
    assert_close(got, expected, terms=20 * 3 * 25)
    loss = SwAVLoss()(None, dict(scores=scores, queue_scores=queued, queue_mask=mask))
    assert_close(float(loss), swav_reference(scores, queue_scores=queued[:, :9]).mean(),
                 terms=20 * 3 * 25 * 3 * 8, magnitude=10.0)


def test_swav_codes_take_nogradient():
    scores = _unit_scores(8, 2, 4)
    weights = RNG.random(8).astype("float32")
    g = gradient(lambda s: swav_loss(s), scores, weights)
    # Only the softmax branch: the gradient of -q.log_softmax(s / t) with q fixed.
    q = [sinkhorn_reference(scores[:, i]) for i in range(2)]
    p = np.exp(scores / 0.1) / np.exp(scores / 0.1).sum(-1, keepdims=True)
    expected = np.zeros(scores.shape)
    for v, i in ((1, 0), (0, 1)):  # View v predicts the code of view i (sum_k q = 1).
        expected[:, v] = (p[:, v] - q[i]) / 0.1 * weights[:, None] / 2
    assert_close(g, expected, terms=20 * 3 * 12, magnitude=10.0)


def test_prototypes_are_unit_vectors_and_gate_blocks_theirgradient():
    layer = Prototypes(7)
    layer.build((None, 5))
    x = RNG.standard_normal((3, 5)).astype("float32")
    kernel = ops.convert_to_numpy(layer.kernel)
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        kernel / np.linalg.norm(kernel, axis=0, keepdims=True))
    assert_close(ops.convert_to_numpy(layer(x)), expected, terms=5)
    assert_close(ops.convert_to_numpy(layer(x, gate=0.0)), expected, terms=5)
    restored = Prototypes.from_config(layer.get_config())
    assert restored.num_prototypes == 7


@pytest.mark.parametrize("make, match", [
    (lambda: sinkhorn_knopp(np.zeros((4, 3), "float32"), epsilon=0.0), "epsilon"),
    (lambda: SwAVLoss(epsilon=-0.05), "epsilon"),
    (lambda: SwAVLoss(sinkhorn_iterations=0), "sinkhorn_iterations"),
    (lambda: SwAVLoss(temperature=0), "temperature"),
    (lambda: Prototypes(0), "num_prototypes"),
    (lambda: swav_loss(np.zeros((4, 2, 3), "float32"), assign_views=3), "assign_views"),
    (lambda: simsiam_loss(np.zeros((4, 1, 3), "float32"), np.zeros((4, 1, 3), "float32")),
     "num_views >= 2"),
])
def test_bad_input_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("loss", [SimSiamLoss(), SwAVLoss(temperature=0.2, epsilon=0.03,
                                                          sinkhorn_iterations=5)])
def test_loss_serialization_round_trip(loss):
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()
