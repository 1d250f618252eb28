"""CLIP's and SigLIP's losses against hand values and a float64 NumPy reference (values and
gradients, the learnable scale and bias included); the logit-scale layer; bad input."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from clip_reference import (clip_reference, clip_reference_grads, siglip_reference,
                            siglip_reference_grads)
from loss_reference import unit
from supcon_tf.heads.logit_scale import LogitScale
from supcon_tf.losses import CLIPLoss, SigLIPLoss, clip_loss, siglip_loss
from tolerance import assert_close

RNG = np.random.default_rng(3)
X, Y = unit(RNG.standard_normal((6, 5))), unit(RNG.standard_normal((6, 5)))
LOG_SCALE, BIAS = math.log(4.0), -1.5
# Each value: a dot product over dim 5, a log-sum-exp / sum over 6, a mean over 6; the
# logits are O(scale).
TERMS, MAGNITUDE = 5 + 2 * 6, 4.0


def needs_x64():
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (tests/test_backends.py sets it)")


def test_hand_values():
    # Two orthogonal pairs at scale 1: each row's softmax is e / (e + 1).
    x = np.eye(2)
    want = -math.log(math.e / (math.e + 1))
    assert_close(ops.convert_to_numpy(clip_loss(x, x, 0.0)), [want, want])
    # SigLIP, t = 1, b = 0: positives log(1 + e^-1), negatives log(1 + e^0).
    want = math.log1p(math.exp(-1)) + math.log(2)
    assert_close(ops.convert_to_numpy(siglip_loss(x, x, 0.0, 0.0)), [want, want])


def test_values_match_reference_float64():
    needs_x64()
    got = ops.convert_to_numpy(clip_loss(X, Y, LOG_SCALE))
    assert got.dtype == np.float64
    assert_close(got.mean(), clip_reference(X, Y, LOG_SCALE), dtype="float64", terms=TERMS,
                 magnitude=MAGNITUDE)
    got = ops.convert_to_numpy(siglip_loss(X, Y, LOG_SCALE, BIAS))
    assert_close(got.mean(), siglip_reference(X, Y, LOG_SCALE, BIAS), dtype="float64",
                 terms=TERMS * 6, magnitude=MAGNITUDE)
    # float32 inputs: the same up to float32's rounding.
    got = ops.convert_to_numpy(clip_loss(X.astype("float32"), Y.astype("float32"), LOG_SCALE))
    assert got.dtype == np.float32
    assert_close(got.mean(), clip_reference(X, Y, LOG_SCALE), terms=TERMS, magnitude=MAGNITUDE)


def _gradients(fn, arrays):
    """Gradients of mean(fn(*arrays)) w.r.t. every array."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(xs)
            loss = tf.reduce_mean(fn(*xs))
        return [g.numpy() for g in tape.gradient(loss, xs)]
    import jax

    grads = jax.grad(lambda *a: fn(*a).mean(), argnums=tuple(range(len(arrays))))(*arrays)
    return [np.asarray(g) for g in grads]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_match_reference(dtype):
    if dtype == "float64":
        needs_x64()
    cast = [np.asarray(a, dtype) for a in (X, Y, LOG_SCALE, BIAS)]
    got = _gradients(clip_loss, cast[:3])
    for g, w in zip(got, clip_reference_grads(X, Y, LOG_SCALE)):
        assert_close(g, w, dtype=dtype, terms=TERMS, magnitude=MAGNITUDE)
    got = _gradients(siglip_loss, cast)
    for g, w in zip(got, siglip_reference_grads(X, Y, LOG_SCALE, BIAS)):
        assert_close(g, w, dtype=dtype, terms=TERMS * 6, magnitude=MAGNITUDE)


def test_reference_gradients_are_the_references_derivatives():
    eps = 1e-6
    for ref, grads, scalars in ((clip_reference, clip_reference_grads, [LOG_SCALE]),
                                (siglip_reference, siglip_reference_grads, [LOG_SCALE, BIAS])):
        want = grads(X, Y, *scalars)
        for k, s in enumerate(scalars):
            up, down = list(scalars), list(scalars)
            up[k], down[k] = s + eps, s - eps
            fd = (ref(X, Y, *up) - ref(X, Y, *down)) / (2 * eps)
            assert_close(want[2 + k], fd, dtype="float64", terms=TERMS * 6, magnitude=1 / eps)
        up = X.copy()
        up[1, 2] += eps
        down = X.copy()
        down[1, 2] -= eps
        fd = (ref(up, Y, *scalars) - ref(down, Y, *scalars)) / (2 * eps)
        assert_close(want[0][1, 2], fd, dtype="float64", terms=TERMS * 6, magnitude=1 / eps)


def test_loss_classes_take_the_towers_and_scalars():
    y_pred = {"image": X.astype("float32"), "text": Y.astype("float32"),
              "log_scale": np.float32(LOG_SCALE), "bias": np.float32(BIAS)}
    assert_close(CLIPLoss()(None, y_pred), clip_reference(X, Y, LOG_SCALE), terms=TERMS,
                 magnitude=MAGNITUDE)
    assert_close(SigLIPLoss()(None, y_pred), siglip_reference(X, Y, LOG_SCALE, BIAS),
                 terms=TERMS * 6, magnitude=MAGNITUDE)


@pytest.mark.parametrize("cls", [CLIPLoss, SigLIPLoss])
def test_loss_serialization_round_trip(cls):
    loss = cls(scale_init=5.0)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert restored.get_config() == loss.get_config()


def test_defaults_follow_the_papers():
    assert CLIPLoss().scale_init == pytest.approx(1 / 0.07) and CLIPLoss().max_scale == 100
    siglip = SigLIPLoss()
    assert (siglip.scale_init, siglip.bias_init, siglip.max_scale) == (10.0, -10.0, None)


def test_logit_scale_is_clipped_at_100_after_a_step():
    layer = LogitScale(scale_init=90.0, max_scale=100.0)
    assert_close(ops.convert_to_numpy(layer.log_scale), math.log(90.0))
    assert not layer.bias.trainable
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.apply([ops.convert_to_tensor(-5.0)], [layer.log_scale])  # Pushes it up by 5.
    assert_close(ops.convert_to_numpy(layer.log_scale), math.log(100.0))
    restored = LogitScale.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    biased = LogitScale(scale_init=10.0, max_scale=None, use_bias=True, bias_init=-10.0)
    assert biased.bias.trainable
    assert_close(ops.convert_to_numpy(biased.bias), -10.0)


@pytest.mark.parametrize("make", [lambda v: CLIPLoss(scale_init=v), lambda v: SigLIPLoss(
    scale_init=v), lambda v: LogitScale(scale_init=v)])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_scale_init_of_zero_or_below_is_refused(make, value):
    with pytest.raises(ValueError, match=r"`scale_init` must be > 0"):
        make(value)


def test_bad_features_are_refused_with_their_name():
    with pytest.raises(ValueError, match="text_features.*batch size"):
        clip_loss(X, Y[:4], 0.0)
    with pytest.raises(ValueError, match="image_features.*rank 2"):
        siglip_loss(X[None], Y, 0.0, 0.0)
    with pytest.raises(ValueError, match="text_features.*L2-normalized"):
        clip_loss(X, 3 * Y, 0.0)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="image_features.*finite"):
        siglip_loss(bad, Y, 0.0, 0.0)
