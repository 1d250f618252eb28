"""CPC v2 as a setting of the framework: its InfoNCE over the patch grid (the extraction's
comparisons, the "dot" similarity, the "nce" loss) against a float64 NumPy statement, value
and gradient (TensorFlow, and JAX through tests/test_backends.py)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from _gradient import gradient
from cpc_reference import cpc_reference, cpc_reference_grads
from supcon_tf.losses.nce import nce_loss
from supcon_tf.methods.cpc import step_comparisons
from supcon_tf.methods.framework import score, similarity_of
from tolerance import assert_close

RNG = np.random.default_rng(0)


def np_(x):
    return ops.convert_to_numpy(x)


def compiled(fn):
    """`fn` as one compiled program on JAX (op-by-op dispatch is slow there), else itself."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def framework_cpc_loss(predictions, targets):
    """Per-sample loss [b] of the framework's CPC setting: the extraction's comparisons,
    scored by the "dot" similarity, through the "nce" loss, weighted and summed."""
    total = 0.0
    for c in step_comparisons(targets, predictions):
        scores, same = score(similarity_of("dot"), c)
        total = total + c["weight"] * nce_loss(scores, same, c["positive"],
                                               c["negative_within"])
    return total


# A batch of 3 images, a grid of 4 x 3 patches, targets of dimension 5, K = 2 steps.
B, ROWS, COLS, DIM, STEPS = 3, 4, 3, 5, 2
TARGETS = RNG.standard_normal((B, ROWS, COLS, DIM)) * 0.7
PREDICTIONS = [RNG.standard_normal((B, ROWS - k, COLS, DIM)) * 0.7
               for k in range(1, STEPS + 1)]
# A value: a dot product over DIM, a log-sum-exp over the batch's B * ROWS * COLS patches, a
# mean over a step's predictions and a sum over the steps; logits are O(DIM * 0.5).
TERMS, MAGNITUDE = DIM + 2 * B * ROWS * COLS + ROWS * COLS * STEPS, 3.0


def needs_x64():
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (tests/test_backends.py sets it)")


def test_zero_predictions_score_every_patch_of_the_batch_alike():
    # Equal logits: each step's loss is log(number of patches of the whole batch), so every
    # patch of every image (the prediction's own image included) is a candidate.
    zeros = [np.zeros_like(p, "float32") for p in PREDICTIONS]
    got = np_(compiled(framework_cpc_loss)(zeros, TARGETS.astype("float32")))
    assert_close(got, [STEPS * math.log(B * ROWS * COLS)] * B, terms=TERMS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_and_gradient_match_the_numpy_statement(dtype):
    if dtype == "float64":
        needs_x64()
    want = cpc_reference(PREDICTIONS, TARGETS)
    cast = [p.astype(dtype) for p in PREDICTIONS]
    got = np_(compiled(framework_cpc_loss)(cast, TARGETS.astype(dtype)))
    assert_close(got, want, dtype=dtype, terms=TERMS, magnitude=MAGNITUDE)
    # The gradient of a weighted sum of the per-sample losses, w.r.t. every input at once.
    weights = np.array([0.5, 1.0, 2.0])
    sizes = [p.size for p in PREDICTIONS]
    shapes = [p.shape for p in PREDICTIONS]

    def packed(x):
        parts, start = [], 0
        for size, shape in zip(sizes, shapes):
            parts.append(ops.reshape(x[start:start + size], shape))
            start += size
        return framework_cpc_loss(parts, ops.reshape(x[start:], TARGETS.shape))

    x = np.concatenate([p.ravel() for p in PREDICTIONS] + [TARGETS.ravel()]).astype(dtype)
    got = gradient(compiled(packed), x, weights.astype(dtype))
    grads_p, grad_z = cpc_reference_grads(PREDICTIONS, TARGETS, weights)
    want = np.concatenate([g.ravel() for g in grads_p] + [grad_z.ravel()])
    assert_close(got, want, dtype=dtype, terms=TERMS, magnitude=MAGNITUDE)


def test_reference_gradient_is_the_references_derivative():
    eps = 1e-6
    weights = np.array([0.5, 1.0, 2.0])
    grads_p, grad_z = cpc_reference_grads(PREDICTIONS, TARGETS, weights)
    for index, target in ((1, (0, 1, 2, 3)), (None, (2, 3, 0, 4))):
        up = [p.copy() for p in PREDICTIONS] + [TARGETS.copy()]
        down = [p.copy() for p in PREDICTIONS] + [TARGETS.copy()]
        slot = -1 if index is None else index
        up[slot][target] += eps
        down[slot][target] -= eps
        fd = (weights @ cpc_reference(up[:-1], up[-1])
              - weights @ cpc_reference(down[:-1], down[-1])) / (2 * eps)
        want = (grad_z if index is None else grads_p[index])[target]
        assert_close(want, fd, dtype="float64", terms=TERMS, magnitude=1 / eps)
