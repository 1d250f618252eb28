"""Mixed precision on CPU: bfloat16 / float16 steps match float32 within a stated tolerance."""

import keras
import numpy as np
import pytest

from supcon_tf import encoders, methods, precision
from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import contrastive_loss

from loss_reference import loss_terms
from tolerance import assert_close

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 4, 16)
IMAGES = (RNG.random((16, 8, 8, 1)) + LABELS[:, None, None, None] / 4).astype("float32")
VIEWS = np.stack([IMAGES + 0.1 * RNG.standard_normal(IMAGES.shape) for _ in range(2)], 1)
VIEWS = VIEWS.astype("float32")


def build():
    encoder = encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(8, 16), dim=16)
    model = methods.SupCon(encoder, ProjectionHead(hidden_dims=(16,), output_dim=8))
    model(keras.ops.zeros((2, 2, 8, 8, 1)))
    return model


def first_step(policy, weights):
    with precision.policy_scope(policy):
        model = build()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        outputs = model(VIEWS[:2], training=False)
        loss = model.fit(VIEWS, LABELS, batch_size=16, verbose=0).history["loss"][0]
    return model, outputs, loss


@pytest.fixture(scope="module")
def float32_run():
    keras.utils.set_random_seed(0)
    weights = build().get_weights()
    return weights, first_step("float32", weights)[2]


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_step_matches_float32(float32_run, policy):
    weights, want = float32_run
    model, outputs, loss = first_step(policy, weights)
    compute = "bfloat16" if policy == "mixed_bfloat16" else "float16"
    assert keras.backend.standardize_dtype(outputs["representation"].dtype) == compute
    assert keras.backend.standardize_dtype(outputs["projection"].dtype) == "float32"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        policy == "mixed_float16")
    assert np.isfinite(loss) and loss != want  # ran in 16 bits, and...
    # ...still agrees: 16-bit activations are rounded once per layer (sums accumulate in
    # float32, the loss is float32), a relative eps of the compute dtype: terms 1 at the
    # loss's magnitude (tests/tolerance.py).
    assert_close(loss, want, dtype=compute, terms=1)
    assert precision.current_policy() == "float32"  # the scope restored the policy


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_contrastive_loss_is_float32_for_16_bit_features(dtype):
    f = RNG.standard_normal((6, 2, 4)).astype("float32")
    f /= np.linalg.norm(f, axis=-1, keepdims=True)
    labels = np.array([0, 1, 0, 1, 2, 2])
    low = keras.ops.cast(f, dtype)
    got = contrastive_loss(low, labels, temperature=0.1)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    want = contrastive_loss(keras.ops.cast(low, "float32"), labels, temperature=0.1)
    # Both float32 from the same rounded features: float32 rounding only.
    assert_close(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
                 dtype="float32", terms=loss_terms(6, 2, 4))


def test_loss_scale_optimizer_helper():
    sgd = keras.optimizers.SGD(0.1)
    assert precision.loss_scale_optimizer(sgd, "mixed_bfloat16") is sgd
    assert precision.loss_scale_optimizer(sgd, "float32") is sgd
    wrapped = precision.loss_scale_optimizer(sgd, "mixed_float16")
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    assert wrapped.inner_optimizer is sgd
    assert precision.loss_scale_optimizer(wrapped, "mixed_float16") is wrapped
    assert precision.needs_loss_scaling(keras.DTypePolicy("mixed_float16"))
    assert not precision.needs_loss_scaling("mixed_bfloat16")


def test_set_policy_validates_and_sets():
    with pytest.raises(ValueError, match="'float32', 'mixed_bfloat16', 'mixed_float16'.*fp16"):
        precision.set_policy("fp16")
    try:
        assert precision.set_policy("mixed_bfloat16").compute_dtype == "bfloat16"
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
    finally:
        precision.set_policy("float32")
    assert keras.layers.Dense(2).compute_dtype == "float32"
