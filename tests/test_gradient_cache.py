"""Gradient caching: sub-batch encoding gives the full-batch loss and gradients."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from supcon_tf import encoders, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import SupConLoss
from supcon_tf.methods.gradient_cache import GradientCacheSimCLR, GradientCacheSupCon

from loss_reference import loss_terms
from tolerance import assert_close, is_close

tf_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="TensorFlow's cached_gradients / tf.function")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)
VIEWS = (3 * RNG.standard_normal((10, 2, 8, 8, 1))).astype("float32")
LABELS = RNG.integers(0, 3, 10)
# Bounds (tests/tolerance.py, float32). The loss: 10 samples x 2 views, head dim 4. A weight
# gradient (and a step's weight change) is a mean over the 20 images that sub-batches sum
# in another order: terms 20, at the size of the gradients (magnitude: the largest
# |gradient|; the weights': the default, max |w|).
LOSS_TERMS = loss_terms(10, 2, 4)
GRAD_TERMS = 20


def assert_gradients_close(got, want, terms=GRAD_TERMS):
    magnitude = max(float(np.abs(w).max()) for w in want)
    for g, w in zip(got, want):
        assert_close(g, w, dtype="float32", terms=terms, magnitude=magnitude)


def no_batchnorm_encoder():
    """Conv encoder without batch-dependent layers: caching must be exact."""
    keras.utils.set_random_seed(1)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(8, activation="relu"),
    ])


def build(cls, encoder, **kwargs):
    keras.utils.set_random_seed(2)
    model = cls(encoder, ProjectionHead(hidden_dims=[8], output_dim=4, use_batch_norm=False),
                loss=SupConLoss(temperature=0.5), **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model(VIEWS[:2])
    return model


def full_batch_gradients(model, views, labels):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        outputs = model(views, training=True)
        loss = model.compute_loss(y=labels, y_pred=outputs)
    return loss, tape.gradient(loss, model.trainable_weights)


@tf_only
@pytest.mark.parametrize("sub_batch_size", [1, 3, 4, 10, 64])
def test_gradients_equal_full_batch_without_batchnorm(sub_batch_size):
    model = build(GradientCacheSupCon, no_batchnorm_encoder(), sub_batch_size=sub_batch_size)
    want_loss, want = full_batch_gradients(model, VIEWS, LABELS)
    loss, outputs, got = model.cached_gradients(VIEWS, LABELS)
    assert_close(float(loss), float(want_loss), dtype="float32", terms=LOSS_TERMS)
    assert outputs["projection"].shape == (10, 2, 4)
    assert len(got) == len(want) == len(model.trainable_weights)
    assert_gradients_close(got, want)
    assert max(float(np.abs(g).max()) for g in got) > 1e-3


@tf_only
@pytest.mark.parametrize("jit_compile,sub_batch_size", [(False, 4), (True, 5)])
def test_fit_step_equals_plain_step(jit_compile, sub_batch_size):
    """One SGD step by `fit` (compiled, dynamic batch) moves the weights like the plain step."""
    plain = build(methods.SupCon, no_batchnorm_encoder())
    cached = build(GradientCacheSupCon, no_batchnorm_encoder(), sub_batch_size=sub_batch_size)
    cached.set_weights(plain.get_weights())
    for model in (plain, cached):
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=jit_compile)
    history = [m.fit(VIEWS, LABELS, batch_size=10, epochs=1, shuffle=False, verbose=0)
               for m in (plain, cached)]
    assert_close(history[1].history["loss"], history[0].history["loss"], dtype="float32",
                 terms=LOSS_TERMS)
    moved = False
    for a, b, before in zip(plain.get_weights(), cached.get_weights(),
                            build(methods.SupCon, no_batchnorm_encoder()).get_weights()):
        # w - lr g: the gradient's error times lr 0.5, and |w| (default magnitude).
        assert_close(b, a, dtype="float32", terms=GRAD_TERMS)
        moved = moved or not is_close(a, before, dtype="float32", terms=GRAD_TERMS)
    assert moved


@tf_only
def test_one_sub_batch_with_batchnorm_is_the_plain_step():
    """sub_batch_size >= batch: same weights and BatchNorm statistics (updated once)."""
    def encoder():
        keras.utils.set_random_seed(3)
        return encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)

    plain = build(methods.SupCon, encoder())
    cached = build(GradientCacheSupCon, encoder(), sub_batch_size=16)
    cached.set_weights(plain.get_weights())
    for model in (plain, cached):
        model.fit(VIEWS, LABELS, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(plain.get_weights(), cached.get_weights()):
        assert_close(b, a, dtype="float32", terms=GRAD_TERMS)


@tf_only
def test_batchnorm_statistics_updated_once_per_sub_batch():
    # Two sub-batches: the moving mean moves twice (momentum 0.9 each), not four times.
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4,), dim=8)
    model = build(GradientCacheSupCon, encoder, sub_batch_size=5)
    bn = encoder.get_layer("bn1")
    conv = encoder.get_layer("conv1")
    model.cached_gradients(VIEWS, LABELS)
    features = [conv(VIEWS[i:i + 5].reshape(-1, 8, 8, 1)).numpy() for i in (0, 5)]
    mean = np.zeros(4)
    for f in features:
        mean = 0.9 * mean + 0.1 * f.mean(axis=(0, 1, 2))
    # Means over 5 images x 2 views x 64 positions, computed here in float32 too.
    assert_close(bn.moving_mean.numpy(), mean, dtype="float32", terms=10 * 64,
                 magnitude=max(float(np.abs(f).max()) for f in features))


@tf_only
def test_simclr_variant_and_serialization_round_trip():
    model = build(GradientCacheSimCLR, no_batchnorm_encoder(), sub_batch_size=3)
    want_loss, want = full_batch_gradients(model, VIEWS, None)
    loss, _, got = model.cached_gradients(VIEWS)
    assert_close(float(loss), float(want_loss), dtype="float32", terms=LOSS_TERMS)
    assert_gradients_close(got, want)
    config = model.get_config()
    assert config["sub_batch_size"] == 3
    clone = GradientCacheSimCLR.from_config(config)
    assert isinstance(clone, GradientCacheSimCLR) and clone.sub_batch_size == 3


@pytest.mark.parametrize("bad", [0, -2, 2.5, "4"])
def test_bad_sub_batch_size_raises(bad):
    with pytest.raises(ValueError, match="sub_batch_size"):
        GradientCacheSupCon(no_batchnorm_encoder(), sub_batch_size=bad)


JAX_CHECK = """
import keras, numpy as np
from supcon_tf import encoders, methods
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import SupConLoss
from supcon_tf.methods.gradient_cache import GradientCacheSupCon
from loss_reference import loss_terms
from tolerance import assert_close, is_close
rng = np.random.default_rng(0)
views = (3 * rng.standard_normal((12, 2, 8, 8, 1))).astype("float32")
labels = rng.integers(0, 3, 12)

def encoder(batchnorm):
    keras.utils.set_random_seed(1)
    if batchnorm:
        return encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4, 8), dim=8)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(8, activation="relu")])

def build(cls, batchnorm, **kwargs):
    keras.utils.set_random_seed(2)
    model = cls(encoder(batchnorm), ProjectionHead(hidden_dims=[8], output_dim=4,
                use_batch_norm=False), loss=SupConLoss(temperature=0.5), **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model(views[:2])
    return model

# Three sub-batches without BatchNorm; one sub-batch (= the plain step) with it.
for batchnorm, sub_batch_size in ((False, 4), (True, 12)):
    plain = build(methods.SupCon, batchnorm)
    cached = build(GradientCacheSupCon, batchnorm, sub_batch_size=sub_batch_size)
    cached.set_weights(plain.get_weights())
    before = plain.get_weights()
    losses = [m.fit(views, labels, batch_size=12, epochs=1, shuffle=False,
                    verbose=0).history["loss"] for m in (plain, cached)]
    # float32; terms as in tests/test_gradient_cache.py (12 samples x 2 views).
    assert_close(losses[1], losses[0], dtype="float32", terms=loss_terms(12, 2, 4))
    for a, b in zip(plain.get_weights(), cached.get_weights()):
        assert_close(b, a, dtype="float32", terms=24)
    assert any(not is_close(a, b, dtype="float32", terms=24)
               for a, b in zip(before, plain.get_weights()))
print("JAX-OK")
"""


def test_jax_fit_step_equals_plain_step():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
    result = subprocess.run([sys.executable, "-c", JAX_CHECK], env=env, capture_output=True,
                            text=True, timeout=600)
    assert "JAX-OK" in result.stdout, result.stderr[-3000:]
