"""tests/tolerance.py: the bound itself, and that it still fails real errors.

The suite compares contrastive losses under `terms = loss_terms(batch, views, dim)`
(tests/loss_reference.py) and the replica test compares one step's gradients under
`terms = batch x views` with the magnitude max |w| / learning rate of the gradient
recovery (tests/test_distribute_replicas.py: weights ~1, learning rate 0.1). Here, at
the replica test's sizes (global batch 16, 2 views, dim 8) and at a larger batch, the
same bounds pass the loss computed in another order (blocks of anchors, a permuted
batch, the float64 reference) and fail one replica's negatives dropped and a wrong
temperature.
"""

import keras
import numpy as np
import pytest
from keras import ops

from loss_reference import loss_terms, supcon_reference, unit
from supcon_tf.losses import contrastive_loss
from tolerance import SAFETY, assert_close, bound, eps, is_close

TEMPERATURE = 0.1
GRAD_MAGNITUDE = 1.0 / 0.1  # The replica test's max |w| / learning rate (weights ~1, lr 0.1).


def numpy(x):
    return ops.convert_to_numpy(x)


def batch(size, num_views=2, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return (unit(rng.standard_normal((size, num_views, dim))).astype("float32"),
            rng.integers(0, 4, size))


def value_and_grad(fn, features):
    """mean(fn(features)) and its gradient w.r.t. the features, on the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        value, grad = jax.value_and_grad(lambda x: ops.mean(fn(x)))(features)
        return np.asarray(value), np.asarray(grad)
    import tensorflow as tf

    x = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_mean(fn(x))
    return value.numpy(), tape.gradient(value, x).numpy()


def one_replica_negatives_dropped(features, labels, **kwargs):
    """The loss when the anchors of the first half (replica 0 of 2) see only their half.

    What a missing cross-replica gather gives: replica 0 contrasts its samples with its
    own samples only; replica 1 sees the global batch.
    """
    half = features.shape[0] // 2
    local = contrastive_loss(features[:half], None if labels is None else labels[:half],
                             **kwargs)
    full = contrastive_loss(features, labels, **kwargs)
    return ops.concatenate([local, full[half:]], axis=0)


SETTINGS = [(16, None), (16, "labels"), (64, None), (64, "labels")]


@pytest.mark.parametrize("size,with_labels", SETTINGS)
def test_loss_bound_passes_other_orders_and_fails_dropped_negatives(size, with_labels):
    features, labels = batch(size)
    labels = labels if with_labels else None
    kwargs = dict(temperature=TEMPERATURE)
    terms = loss_terms(size, 2, 8)
    want = numpy(contrastive_loss(features, labels, block_size=0, **kwargs))
    # The same loss in another order: blocks of anchors, a permuted batch, float64.
    blocked = numpy(contrastive_loss(features, labels, block_size=5, **kwargs))
    perm = np.random.default_rng(1).permutation(size)
    permuted = numpy(contrastive_loss(features[perm], None if labels is None else labels[perm],
                                      **kwargs))[np.argsort(perm)]
    reference = supcon_reference(features, labels, temperature=TEMPERATURE)
    for other in (blocked, permuted, reference):
        assert_close(other, want, dtype="float32", terms=terms)
        assert_close(other.mean(), want.mean(), dtype="float32", terms=terms)
    # Real errors fail, per sample and as the batch mean `fit` reports.
    dropped = numpy(one_replica_negatives_dropped(features, labels, **kwargs))
    wrong_temperature = numpy(contrastive_loss(features, labels, temperature=TEMPERATURE * 1.01))
    for wrong in (dropped, wrong_temperature):
        assert not is_close(wrong, want, dtype="float32", terms=terms)
        assert not is_close(wrong.mean(), want.mean(), dtype="float32", terms=terms)


@pytest.mark.parametrize("size,with_labels", SETTINGS)
def test_gradient_bound_passes_blocks_and_fails_dropped_negatives(size, with_labels):
    features, labels = batch(size)
    labels = labels if with_labels else None
    kwargs = dict(temperature=TEMPERATURE)
    _, want = value_and_grad(lambda x: contrastive_loss(x, labels, block_size=0, **kwargs),
                             features)
    _, blocked = value_and_grad(lambda x: contrastive_loss(x, labels, block_size=5, **kwargs),
                                features)
    _, dropped = value_and_grad(lambda x: one_replica_negatives_dropped(x, labels, **kwargs),
                                features)
    _, wrong_temperature = value_and_grad(
        lambda x: contrastive_loss(x, labels, temperature=TEMPERATURE * 1.01), features)
    # The replica test's gradient bound (its magnitude is larger than |gradient| here)...
    replica_bound = dict(dtype="float32", terms=size * 2, magnitude=GRAD_MAGNITUDE)
    # ...and the loss tests' (for the gradient of a batch mean: magnitude max |gradient|,
    # the default of at least 1 would be ~N times too loose).
    loss_bound = dict(dtype="float32", terms=loss_terms(size, 2, 8),
                      magnitude=float(np.abs(want).max()))
    for kwargs in (replica_bound, loss_bound):
        assert_close(blocked, want, **kwargs)
        assert not is_close(dropped, want, **kwargs)
    assert not is_close(wrong_temperature, want, **loss_bound)


def test_eps_of_each_dtype():
    assert eps("float64") == 2.0 ** -52
    assert eps("float32") == 2.0 ** -23
    assert eps("float16") == 2.0 ** -10
    assert eps("bfloat16") == 2.0 ** -7
    assert eps(np.float32) == eps(np.dtype("float32")) == eps("float32")


def test_bound_scales_with_terms_and_magnitude():
    assert bound([0.5], dtype="float32") == SAFETY * 2.0 ** -23  # magnitude at least 1
    assert bound([-3.0, 2.0], dtype="float32") == SAFETY * 2.0 ** -23 * 3.0  # max |expected|
    assert bound([], dtype="float64") == SAFETY * 2.0 ** -52
    one = bound([1.0], dtype="float32", terms=1, magnitude=1.0)
    # Powers of two times small integers: exact in float64.
    assert bound([1.0], dtype="float32", terms=10, magnitude=1.0) == 10 * one
    assert bound([1.0], dtype="float32", terms=10, magnitude=0.5) == 5 * one
    assert_close(bound([1.0], dtype="float32", magnitude=1e-3), 1e-3 * one, dtype="float64",
                 terms=2, magnitude=one)
    assert bound([1.0], dtype="bfloat16") / bound([1.0], dtype="float32") == 2.0 ** 16


@pytest.mark.parametrize("terms", [0, 0.5, -1])
def test_terms_below_one_rejected(terms):
    with pytest.raises(ValueError, match=r"`terms` must be >= 1; received terms="):
        bound([1.0], terms=terms)


def test_assert_close_is_absolute_and_names_the_bound():
    atol = bound([2.0], dtype="float32", terms=4)
    assert is_close(2.0 + 0.9 * atol, 2.0, dtype="float32", terms=4)
    assert not is_close(2.0 + 1.1 * atol, 2.0, dtype="float32", terms=4)
    assert not is_close(2.0 + 0.9 * atol, 2.0, dtype="float32", terms=4, magnitude=1.0)
    with pytest.raises(AssertionError, match=r"pi \(bound .*: float32, 4 terms\)"):
        assert_close(3.0, np.pi, dtype="float32", terms=4, err_msg="pi")
