"""The blocked (memory-bounded) contrastive loss equals the plain one, forward and backward."""

import itertools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from supcon_tf.losses import contrastive_loss
from supcon_tf.losses import blocked
from supcon_tf.losses.blocked import blocked_contrastive_loss

from loss_reference import loss_magnitude, loss_terms
from tolerance import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(1)
WEIGHTS = RNG.random(7).astype("float32")  # Distinct per-sample weights test every row's gradient.


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype("float32")


def value_and_grad(fn, features):
    """sum(weights * fn(features)) and its gradient w.r.t. features, on the active backend."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(fn(x) * WEIGHTS[: features.shape[0]])
        return value.numpy(), tape.gradient(value, x).numpy()
    import jax

    value, grad = jax.value_and_grad(
        lambda x: (fn(x) * WEIGHTS[: features.shape[0]]).sum())(features)
    return np.asarray(value), np.asarray(grad)


LABELS = {
    "none": None,
    "ids": np.array([0, 1, 0, 2, 1, 0, 2]),
    "multi_hot": np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 0],
                           [0, 0, 0]], "float32"),
}


# Every (labels, contrast_mode, denominator_mode), each with one of the view counts and
# block sizes (1 view; uneven blocks; one block larger than the batch).
VIEWS_AND_BLOCKS = [(2, 3), (1, 2), (3, 5), (2, 1000)]
CASES = [combo + VIEWS_AND_BLOCKS[i % 4] for i, combo in enumerate(itertools.product(
    list(LABELS), ["all", "one"], ["all", "only_negatives"]))]


@pytest.mark.parametrize("labels,contrast_mode,denominator_mode,num_views,block_size", CASES)
def test_equals_plain_loss_and_gradient(labels, contrast_mode, denominator_mode, num_views,
                                        block_size):
    features = unit(RNG.standard_normal((7, num_views, 6)))
    kwargs = dict(temperature=0.2, contrast_mode=contrast_mode,
                  denominator_mode=denominator_mode, scale_by_temperature=num_views != 3)
    labels = LABELS[labels]
    plain = ops.convert_to_numpy(contrastive_loss(features, labels, **kwargs))
    got = ops.convert_to_numpy(
        blocked_contrastive_loss(features, labels, block_size=block_size, **kwargs))
    # float32; blocks of anchors reorder the log-sum-exps (sample weights < 1).
    bound = dict(dtype="float32", terms=loss_terms(7, num_views, 6),
                 magnitude=loss_magnitude(plain, 0.2, num_views != 3))
    assert_close(got, plain, **bound)
    want_value, want_grad = value_and_grad(lambda x: contrastive_loss(x, labels, **kwargs),
                                           features)
    value, grad = value_and_grad(
        lambda x: blocked_contrastive_loss(x, labels, block_size=block_size, **kwargs),
        features)
    assert_close(value, want_value, **bound)
    assert_close(grad, want_grad, **bound)
    if labels is not None or num_views > 1:  # One unlabelled view has no positives.
        assert np.abs(grad).max() > 1e-3  # The gradient is not trivially zero.


@pytest.mark.parametrize("labels,num_views,denominator_mode", [
    ("ids", 2, "only_negatives"), ("none", 3, "all")])
def test_contrast_tiles_equal_plain_loss_gradient(monkeypatch, labels, num_views,
                                                  denominator_mode):
    # Backward tiles of at most 4 contrasts: 12 contrasts in 3 tiles, 18 in 6 of 3.
    monkeypatch.setattr(blocked, "COLUMN_BLOCK", 4)
    features = unit(RNG.standard_normal((6, num_views, 5)))
    kwargs = dict(temperature=0.2, denominator_mode=denominator_mode)
    labels = None if labels == "none" else LABELS[labels][:6]
    want_value, want_grad = value_and_grad(lambda x: contrastive_loss(x, labels, **kwargs),
                                           features)
    value, grad = value_and_grad(
        lambda x: blocked_contrastive_loss(x, labels, block_size=4, **kwargs), features)
    bound = dict(dtype="float32", terms=loss_terms(6, num_views, 5),
                 magnitude=loss_magnitude(want_value, 0.2, True))
    assert_close(value, want_value, **bound)
    assert_close(grad, want_grad, **bound)


def test_float64_kept_and_exact():
    features = unit(RNG.standard_normal((5, 2, 4))).astype("float64")
    got = ops.convert_to_numpy(blocked_contrastive_loss(features, block_size=3))
    if keras.backend.backend() == "jax" and got.dtype != np.float64:
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1")
    assert got.dtype == np.float64
    assert_close(got, ops.convert_to_numpy(contrastive_loss(features)), dtype="float64",
                 terms=loss_terms(5, 2, 4))


def test_sample_without_positive_or_negative_is_zero():
    # Single view, class 1 alone: no positive -> 0. All-one-class batch with
    # only_negatives: no denominator -> 0, and a zero (not NaN) gradient.
    features = unit(RNG.standard_normal((3, 1, 4)))
    got = ops.convert_to_numpy(blocked_contrastive_loss(features, np.array([0, 0, 1])))
    assert got[2] == 0.0 and np.all(got[:2] > 0)
    features = unit(RNG.standard_normal((3, 2, 4)))
    value, grad = value_and_grad(lambda x: blocked_contrastive_loss(
        x, np.zeros(3, "int32"), denominator_mode="only_negatives", block_size=2), features)
    assert value == 0.0 and np.all(grad == 0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(summation_location="inside"), "summation_location"),
    (dict(denominator_mode="one_positive"), "denominator_mode"),
    (dict(positives_cap=2), "positives_cap"),
    (dict(block_size=0), "block_size"),
    (dict(temperature=0.0), "temperature"),
])
def test_unsupported_or_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        blocked_contrastive_loss(unit(RNG.standard_normal((4, 2, 3))), **kwargs)


def test_supports():
    assert blocked.supports()
    assert blocked.supports(denominator_mode="only_negatives", contrast_mode="one")
    assert not blocked.supports(summation_location="inside")
    assert not blocked.supports(positives_cap=4)


def test_contrastive_loss_dispatch(monkeypatch):
    features = unit(RNG.standard_normal((6, 2, 4)))
    calls = []
    real = blocked.blocked_contrastive_loss

    def spy(*args, **kwargs):
        calls.append(kwargs["block_size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(blocked, "blocked_contrastive_loss", spy)
    plain = ops.convert_to_numpy(contrastive_loss(features))
    assert calls == []  # 12 x 12 logits: far below the automatic threshold.
    forced = ops.convert_to_numpy(contrastive_loss(features, block_size=5))
    assert calls == [5]
    assert_close(forced, plain, dtype="float32", terms=loss_terms(6, 2, 4))
    monkeypatch.setattr(blocked, "AUTO_THRESHOLD", 100)  # 144 logits > 100: blocked.
    auto = ops.convert_to_numpy(contrastive_loss(features))
    assert calls == [5, blocked.DEFAULT_BLOCK_SIZE]
    assert_close(auto, plain, dtype="float32", terms=loss_terms(6, 2, 4))
    ops.convert_to_numpy(contrastive_loss(features, summation_location="inside"))
    assert len(calls) == 2  # Unsupported options stay on the plain path.
    with pytest.raises(ValueError, match="summation_location"):
        contrastive_loss(features, summation_location="inside", block_size=4)
    assert calls[-1] == 4  # Forced blocked: the options are refused, not ignored.
    ops.convert_to_numpy(contrastive_loss(features, block_size=0))
    assert len(calls) == 3  # block_size=0: always plain.


def test_compiled_tensorflow_graph_and_xla():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function / jit_compile are TensorFlow's")
    import tensorflow as tf

    features = unit(RNG.standard_normal((7, 2, 6)))
    labels = LABELS["ids"]

    def step(fn):
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = tf.reduce_sum(fn(x) * WEIGHTS)
            return value, tape.gradient(value, x)
        return run

    want = step(lambda x: contrastive_loss(x, labels))(tf.constant(features))
    for jit in (False, True):
        got = tf.function(step(lambda x: blocked_contrastive_loss(x, labels, block_size=4)),
                          jit_compile=jit)(tf.constant(features))
        for g, w in zip(got, want):  # Weighted sum of the loss, its gradient (float32).
            assert_close(g, w, dtype="float32", terms=loss_terms(7, 2, 6))


JAX_CHECK = """
import numpy as np, jax
from loss_reference import loss_terms
from supcon_tf.losses import contrastive_loss
from tolerance import assert_close
from supcon_tf.losses.blocked import blocked_contrastive_loss
rng = np.random.default_rng(0)
f = rng.standard_normal((9, 2, 5)).astype("float32")
f /= np.linalg.norm(f, axis=-1, keepdims=True)
labels = rng.integers(0, 3, 9)
w = rng.random(9).astype("float32")
plain = jax.jit(jax.value_and_grad(lambda x: (contrastive_loss(x, labels) * w).sum()))(f)
got = jax.jit(jax.value_and_grad(
    lambda x: (blocked_contrastive_loss(x, labels, block_size=4) * w).sum()))(f)
for g, p in zip(got, plain):  # Weighted sum of the loss, its gradient (float32).
    assert_close(g, p, dtype="float32", terms=loss_terms(9, 2, 5))
print("JAX-OK")
"""


def run_python(code, backend):
    # The tests folder too, for tests/tolerance.py and tests/loss_reference.py.
    env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_jax_backend_jit_equals_plain():
    if keras.backend.backend() == "jax":
        pytest.skip("covered in-process by the tests above")
    pytest.importorskip("jax")
    result = run_python(JAX_CHECK, "jax")
    assert "JAX-OK" in result.stdout, result.stderr[-3000:]


DISTRIBUTED_CHECK = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from loss_reference import loss_terms
from supcon_tf.losses import contrastive_loss
from supcon_tf.losses.blocked import blocked_contrastive_loss
from tolerance import assert_close
rng = np.random.default_rng(0)
f = rng.standard_normal((8, 2, 5)).astype("float32")
f /= np.linalg.norm(f, axis=-1, keepdims=True)
labels = rng.integers(0, 3, 8)

def value_grad(fn, x, y):
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(fn(x, y))
    return loss, tape.gradient(loss, x)

want_loss, want_grad = value_grad(contrastive_loss, tf.constant(f), labels)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
batches = strategy.experimental_distribute_values_from_function(
    lambda ctx: (f[4 * ctx.replica_id_in_sync_group:][:4],
                 labels[4 * ctx.replica_id_in_sync_group:][:4]))

@tf.function
def step(batch):
    x, y = batch
    return value_grad(lambda x, y: blocked_contrastive_loss(x, y, block_size=3), x, y)

loss, grad = strategy.run(step, args=(batches,))
loss = sum(float(v) for v in strategy.experimental_local_results(loss))
grad = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grad)])
# float32 sum of the loss over the global batch and its gradient, in 2 replicas and blocks.
assert_close(loss, float(want_loss), dtype="float32", terms=loss_terms(8, 2, 5))
assert_close(grad, want_grad.numpy(), dtype="float32", terms=loss_terms(8, 2, 5))
print("DIST-OK")
"""


def test_composes_with_cross_replica_concat():
    """Two replicas: local anchors against gathered contrasts = the single-device loss."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute is TensorFlow's")
    result = run_python(DISTRIBUTED_CHECK, "tensorflow")
    assert "DIST-OK" in result.stdout, result.stderr[-3000:]


def test_auto_threshold_is_the_measured_one_for_the_backend():
    on_jax_cpu = keras.backend.backend() == "jax" and __import__("jax").default_backend() == "cpu"
    want = blocked.AUTO_THRESHOLD_JAX_CPU if on_jax_cpu else blocked.AUTO_THRESHOLD
    assert blocked.auto_threshold() == want
    views_64 = np.zeros((32, 2, 4), "float32")  # 64 x 64 = 2**12 logits.
    assert blocked.auto_blocked(views_64) == on_jax_cpu
    assert not blocked.auto_blocked(views_64[:31])
    views_2048 = np.zeros((1024, 2, 4), "float32")  # 2**22 logits: blocked on both.
    assert blocked.auto_blocked(views_2048)
    assert blocked.auto_blocked(views_2048[:1023]) == on_jax_cpu
    assert not blocked.auto_blocked(views_2048, summation_location="inside")
