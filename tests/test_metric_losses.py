"""Metric-learning losses against hand values and float64 NumPy statements of the papers."""

import keras
import numpy as np
import pytest
from keras import ops

from metric_reference import (
    circle_reference,
    multi_similarity_reference,
    numeric_gradient,
    proxy_anchor_reference,
    triplet_reference,
)
from supcon_tf import losses, optimizers
from supcon_tf.heads import Proxies
from tolerance import assert_close

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 4))  # float64: the losses keep it.
LABELS = np.array([0, 1, 0, 2, 1, 0, 3, 2])  # Class 3 has one sample: no positive.
WEIGHTS = RNG.random(8) + 0.5  # Distinct per-anchor weights test every row's gradient.
PROXIES = RNG.standard_normal((4, 4))

CASES = {
    "triplet_hard": (losses.triplet_loss, triplet_reference, {}),
    "triplet_hard_l2": (losses.triplet_loss, triplet_reference,
                        dict(distance="squared_l2", margin=1.0)),
    "triplet_hard_soft": (losses.triplet_loss, triplet_reference, dict(soft_margin=True)),
    "triplet_semi": (losses.triplet_loss, triplet_reference, dict(mining="semi_hard")),
    "triplet_semi_l2": (losses.triplet_loss, triplet_reference,
                        dict(mining="semi_hard", distance="squared_l2", margin=0.5)),
    "triplet_semi_anchors": (losses.triplet_loss, triplet_reference,
                             dict(mining="semi_hard", average="anchors")),
    "triplet_all_l2_unit_nonzero": (losses.triplet_loss, triplet_reference,
                                    dict(mining="all", distance="l2_unit", reducer="non_zero")),
    "triplet_easy_hard_l2": (losses.triplet_loss, triplet_reference,
                             dict(mining="batch_easy_hard", distance="l2", margin=1.0)),
    "multi_similarity": (losses.multi_similarity_loss, multi_similarity_reference, {}),
    "multi_similarity_hard_triplets": (losses.multi_similarity_loss, multi_similarity_reference,
                                       dict(miner="batch_hard", reducer="non_zero")),
    "multi_similarity_wide": (losses.multi_similarity_loss, multi_similarity_reference,
                              dict(alpha=3.0, beta=10.0, base=0.2, epsilon=0.5)),
    "circle": (losses.circle_loss, circle_reference, dict(gamma=8.0)),
    "circle_paper": (losses.circle_loss, circle_reference, dict(gamma=32.0, margin=0.25)),
}


def value_and_grad(fn, x, weights=1.0):
    """sum(weights * fn(x)) and its gradient w.r.t. x on the active backend (float64)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(fn(x) * weights)
        return value.numpy(), tape.gradient(value, x).numpy()
    import jax

    value, grad = jax.value_and_grad(lambda v: (fn(v) * weights).sum())(x)
    return np.asarray(value), np.asarray(grad)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_float64_reference_and_its_gradient(case):
    fn, reference, kwargs = CASES[case]
    got = ops.convert_to_numpy(fn(X, LABELS, **kwargs))
    want = reference(X, LABELS, **kwargs)
    assert got.dtype == np.float64 and got.shape == (8,)
    assert np.count_nonzero(want) >= 4  # Not a trivially zero case.
    assert want[6] == 0 and got[6] == 0  # No positive: no loss.
    assert_close(got, want, dtype="float64", terms=8 * 4, magnitude=max(1, np.abs(want).max()))
    value, grad = value_and_grad(lambda v: fn(v, LABELS, **kwargs), X, WEIGHTS)
    # Circle's weights alpha are constants of the gradient (as in the official code).
    fixed = dict(alpha_from=X) if reference is circle_reference else {}
    want_grad = numeric_gradient(lambda v: float(np.sum(reference(v, LABELS, **kwargs, **fixed)
                                                        * WEIGHTS)), X)
    assert np.abs(want_grad).max() > 1e-3
    # Finite differences with step h carry O(h^2 f''') + O(eps f / h) error ~ 1e-9 f.
    assert_close(grad, want_grad, dtype="float32", terms=8,
                 magnitude=max(1.0, np.abs(want_grad).max()))
    assert_close(value, np.sum(want * WEIGHTS), dtype="float64", terms=64)


def test_proxy_anchor_matches_reference_and_gradient():
    def fn(v, proxies=PROXIES):
        return losses.proxy_anchor_loss(Proxies_similarity(v, proxies), LABELS)

    got = float(ops.convert_to_numpy(fn(X)))
    want = proxy_anchor_reference(X, LABELS, PROXIES)
    assert_close(got, want, dtype="float64", terms=8 * 4, magnitude=want)
    value, grad = value_and_grad(fn, X)
    want_grad = numeric_gradient(lambda v: proxy_anchor_reference(v, LABELS, PROXIES), X)
    assert_close(grad, want_grad, dtype="float32", terms=8,
                 magnitude=max(1.0, np.abs(want_grad).max()))
    _, proxy_grad = value_and_grad(lambda p: fn(X, p), PROXIES)
    want_proxy_grad = numeric_gradient(lambda p: proxy_anchor_reference(X, LABELS, p), PROXIES)
    assert_close(proxy_grad, want_proxy_grad, dtype="float32", terms=8,
                 magnitude=max(1.0, np.abs(want_proxy_grad).max()))


def Proxies_similarity(v, proxies):
    from supcon_tf.losses.pairwise import pairwise_similarity

    return pairwise_similarity(v, ops.convert_to_tensor(proxies))


def test_triplet_hand_values():
    # Unit vectors: d(0,1) = 1, d(0,2) = 2, d(1,2) = 1 (cosine distance).
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1])
    for mining in losses.TRIPLET_MINING:
        got = ops.convert_to_numpy(losses.triplet_loss(x, labels, margin=0.2, mining=mining,
                                                       average="anchors"))
        assert_close(got, [0.0, 0.2, 0.0], dtype="float64", terms=2)
    # TF-Addons' semi-hard mean is over the 2 positive pairs (0.1), not the 3 anchors: the
    # per-anchor values are scaled by anchors / pairs = 3 / 2 so that their mean is it.
    got = ops.convert_to_numpy(losses.triplet_loss(x, labels, margin=0.2, mining="semi_hard"))
    assert_close(got, [0.0, 0.3, 0.0], dtype="float64", terms=2)
    assert_close(float(losses.TripletLoss(margin=0.2, mining="semi_hard")(labels, x)), 0.1,
                 dtype="float32", terms=4)


def test_semi_hard_picks_the_nearest_farther_negative():
    # Anchor 0: positive at distance 1; negatives at 0.5 (hard), 1.5 and 3 (squared L2 on a
    # line): semi-hard takes 1.5, batch-hard 0.5.
    x = np.array([[0.0], [1.0], [np.sqrt(0.5)], [np.sqrt(1.5)], [np.sqrt(3.0)]])
    labels = np.array([0, 0, 1, 1, 1])
    semi = losses.triplet_loss(x, labels, margin=1.0, mining="semi_hard", distance="squared_l2",
                               average="anchors")
    hard = losses.triplet_loss(x, labels, margin=1.0, distance="squared_l2")
    assert_close(ops.convert_to_numpy(semi)[0], 1.0 + 1.0 - 1.5, dtype="float64", terms=2)
    assert_close(ops.convert_to_numpy(hard)[0], 1.0 + 1.0 - 0.5, dtype="float64", terms=2)


def test_multi_similarity_mining_drops_easy_pairs():
    """A negative far below every positive's similarity is not mined: no gradient reaches it."""
    # Anchor 0: positive at similarity 0.6, negatives at 0.8 (mined: 0.8 + 0.1 > 0.6) and
    # about -1 (not mined); the positive is mined (0.6 - 0.1 < 0.8).
    x = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [-1.0, 0.05]])
    labels = np.array([0, 0, 1, 2])
    _, grad = value_and_grad(lambda v: losses.multi_similarity_loss(v, labels)[:1], x)
    assert np.abs(grad[1]).max() > 0 and np.abs(grad[2]).max() > 0
    assert np.abs(grad[3]).max() == 0
    want = multi_similarity_reference(x, labels)[0]
    by_hand = np.log1p(np.exp(-2.0 * (0.6 - 0.5))) / 2.0 + np.log1p(np.exp(50.0 * 0.3)) / 50.0
    assert_close(want, by_hand, dtype="float64", terms=2)
    assert_close(ops.convert_to_numpy(losses.multi_similarity_loss(x, labels))[0], by_hand,
                 dtype="float64", terms=4)


def test_loss_classes_reduce_and_round_trip():
    for cls, kwargs in ((losses.TripletLoss, dict(margin=0.3, mining="semi_hard")),
                        (losses.MultiSimilarityLoss, dict(beta=20.0)),
                        (losses.CircleLoss, dict(gamma=16.0)),
                        (losses.ProxyAnchorLoss, dict(num_classes=4, lr_multiplier=10.0))):
        loss = cls(**kwargs)
        restored = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(restored) is cls and restored.get_config() == loss.get_config()
        y_pred = Proxies_similarity(X, PROXIES) if cls is losses.ProxyAnchorLoss else X
        got = float(ops.convert_to_numpy(restored(LABELS, y_pred)))
        if cls is losses.ProxyAnchorLoss:
            want = proxy_anchor_reference(X, LABELS, PROXIES, **{})
        else:
            fn = {losses.TripletLoss: triplet_reference,
                  losses.MultiSimilarityLoss: multi_similarity_reference,
                  losses.CircleLoss: circle_reference}[cls]
            want = float(np.mean(fn(X, LABELS, **kwargs)))
        assert_close(got, want, dtype="float32", terms=8 * 4, magnitude=max(1.0, abs(want)))
    assert isinstance(losses.metric_loss("triplet", margin=0.1), losses.TripletLoss)
    with pytest.raises(ValueError, match="Unknown metric loss 'triplett'.*'triplet'"):
        losses.metric_loss("triplett")


@pytest.mark.parametrize("make, match", [
    (lambda: losses.TripletLoss(margin=-0.1), r"`margin` must be >= 0; received margin=-0.1"),
    (lambda: losses.TripletLoss(mining="hardest"), r"`mining` must be one of 'batch_hard', "
                                                   r".*'semi_hard'.*; received mining='hardest'"),
    (lambda: losses.TripletLoss(distance="l1"), r"`distance` must be one of"),
    (lambda: losses.CircleLoss(margin=-1), r"`margin` must be >= 0"),
    (lambda: losses.MultiSimilarityLoss(alpha=0), r"`alpha` must be > 0"),
    (lambda: losses.ProxyAnchorLoss(num_classes=0), r"`num_classes` must be an integer >= 1"),
    (lambda: losses.triplet_loss(X[None], LABELS), r"`embeddings` must have rank 2.*\(1, 8, 4\)"),
    (lambda: losses.circle_loss(X[:, 0], LABELS), r"`embeddings` must have rank 2"),
    (lambda: losses.multi_similarity_loss(X, None), r"`labels` are required"),
    (lambda: losses.triplet_loss(X, LABELS[:4]), r"`labels` batch size \(4\)"),
    (lambda: losses.proxy_anchor_loss(X, LABELS + 4), r"`labels` must be class ids in "
                                                      r"\[0, 4\) \(num_classes=4\)"),
    (lambda: losses.TripletLoss(average="triplets"), r"`average` must be one of 'pairs', "
                                                     r"'anchors'; received average='triplets'"),
])
def test_bad_input_errors_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_lr_multiplier_scales_the_update_not_the_gradient(name):
    """With the same gradient, the multiplied variable moves `multiplier` times as far."""
    a, b = keras.Variable(np.ones(3, "float32")), keras.Variable(np.ones(3, "float32"))
    optimizer = optimizers.get(name, learning_rate=0.01)
    optimizers.set_lr_multiplier(optimizer, [a], 10.0)
    optimizers.set_lr_multiplier(optimizer, [a], 10.0)  # Idempotent, not 100x.
    grad = ops.convert_to_tensor(np.array([0.5, -1.0, 2.0], "float32"))
    optimizer.apply([grad, grad], [a, b])
    moved_a = 1.0 - ops.convert_to_numpy(a)
    moved_b = 1.0 - ops.convert_to_numpy(b)
    assert np.abs(moved_b).min() > 0
    assert_close(moved_a, 10.0 * moved_b, dtype="float32", terms=4)


def test_proxies_layer_round_trip():
    layer = Proxies(5, lr_multiplier=3.0)
    out = layer(ops.convert_to_tensor(X.astype("float32")))
    assert tuple(out.shape) == (8, 5) and np.abs(ops.convert_to_numpy(out)).max() <= 1 + 1e-6
    restored = Proxies.from_config(layer.get_config())
    assert restored.num_classes == 5 and restored.lr_multiplier == 3.0
