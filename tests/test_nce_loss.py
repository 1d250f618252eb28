"""AMDIM's clipped NCE (`losses.nce_loss` after a `losses.distances` similarity, as the
framework composes them) against a float64 NumPy statement, value and gradient, in the
released code's form (scores / sqrt(dim), penalty 5e-2) and the paper's (plain scores,
penalty 4e-2); the clipping; the loss options."""

import keras
import numpy as np
import pytest
from keras import ops

from _gradient import gradient
from amdim_reference import amdim_grads, amdim_loss
from supcon_tf.losses import NCELoss, distances, nce_loss, tanh_clip
from tolerance import assert_close

RNG = np.random.default_rng(7)
B, L, D = 4, 5, 6
# Large enough that many scores pass tclip / 2, where the clipping bends them.
U, V = 5.0 * RNG.standard_normal((B, D)), 5.0 * RNG.standard_normal((B, L, D))
# The released code: scores / sqrt(dim), penalty 5e-2; the paper: plain scores, 4e-2.
FORMS = {"code": ("scaled_dot", 1 / np.sqrt(D), 5e-2), "paper": ("dot", 1.0, 4e-2)}
TERMS = D + B * L  # A dot product, then a log-sum-exp over the global targets.


def needs_x64():
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (tests/test_backends.py sets it)")


def framework_nce(similarity, u, v, penalty, tclip=20.0):
    """The package's pieces composed as the method composes them, mean over samples."""
    def fn(x):
        u_, v_ = x[:, :D], ops.reshape(x[:, D:], (B, L, D))
        scores = distances.get(similarity).similarity(u_, ops.reshape(v_, (B * L, D)))
        return nce_loss(ops.reshape(scores, (B, 1, B, L)), np.eye(B), np.ones((1, L)),
                        tclip=tclip, score_penalty=penalty)
    return fn, np.concatenate([u, v.reshape(B, L * D)], axis=1)


def test_reference_gradients_are_the_references_derivatives():
    for scale, penalty in ((1 / np.sqrt(D), 5e-2), (1.0, 4e-2)):
        gu, gv = amdim_grads(U, V, scale=scale, penalty=penalty)
        step = 1e-6
        for array, grad in ((U, gu), (V, gv)):
            for index in [(0, 0), (2, 3), (1, 4)] if array.ndim == 2 else [(0, 0, 0), (3, 4, 5)]:
                up, down = array.copy(), array.copy()
                up[index] += step
                down[index] -= step
                args = (up, V) if array is U else (U, up)
                args_down = (down, V) if array is U else (U, down)
                numeric = (amdim_loss(*args, scale=scale, penalty=penalty)
                           - amdim_loss(*args_down, scale=scale, penalty=penalty)) / (2 * step)
                np.testing.assert_allclose(grad[index], numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clipped_nce_matches_the_reference(form, dtype):
    if dtype == "float64":
        needs_x64()
    similarity, scale, penalty = FORMS[form]
    raw = scale * np.einsum("id,jld->ijl", U, V)
    assert np.abs(raw).max() > 10.0  # The tanh clipping is exercised.
    fn, x = framework_nce(similarity, U, V, penalty)
    x = x.astype(dtype)
    got = ops.convert_to_numpy(fn(x))
    assert got.dtype == np.dtype(dtype)
    want = amdim_loss(U, V, scale=scale, penalty=penalty)
    magnitude = max(20.0, penalty * float(np.max(raw ** 2)))
    assert_close(got.mean(), want, dtype=dtype, terms=TERMS, magnitude=magnitude)
    grad = gradient(fn, x, np.full(B, 1.0 / B, dtype))
    gu, gv = amdim_grads(U, V, scale=scale, penalty=penalty)
    assert_close(grad[:, :D], gu, dtype=dtype, terms=TERMS, magnitude=magnitude * 5.0)
    assert_close(grad[:, D:], gv.reshape(B, L * D), dtype=dtype, terms=TERMS,
                 magnitude=magnitude * 5.0)
    # Without the penalty, or without the clipping, the value differs: both are in it.
    for other in (framework_nce(similarity, U, V, 0.0), framework_nce(similarity, U, V, penalty,
                                                                      tclip=None)):
        assert abs(float(ops.convert_to_numpy(other[0](x)).mean()) - want) > 1e-2


def test_tanh_clip_and_loss_options():
    got = ops.convert_to_numpy(tanh_clip(np.array([0.0, 1.0, 1e4, -1e4]), 20.0))
    assert_close(got, [0.0, 20.0 * np.tanh(0.05), 20.0, -20.0], magnitude=20.0)
    loss = NCELoss(tclip=20, score_penalty=0.05, temperature=0.5)
    assert NCELoss.from_config(loss.get_config()).get_config() == loss.get_config()
    for kwargs, match in ((dict(tclip=0), "tclip"), (dict(temperature=-1), "temperature"),
                          (dict(score_penalty="big"), "score_penalty")):
        with pytest.raises(ValueError, match=match):
            NCELoss(**kwargs)
