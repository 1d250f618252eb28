"""contrastive_loss and its Loss classes against hand values and a float64 NumPy reference."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from loss_reference import loss_magnitude, loss_terms, nt_xent_reference, supcon_reference, unit
from supcon_tf.losses import SimCLRLoss, SupConLoss, contrastive_loss
from tolerance import assert_close

RNG = np.random.default_rng(0)
FEATURES = unit(RNG.standard_normal((6, 2, 5)))
LABELS = np.array([0, 1, 0, 2, 1, 0])


def numpy(x):
    return ops.convert_to_numpy(x)


def dtype_of(x):
    """The dtype a result was computed in (float64 inputs stay float64; JAX needs x64)."""
    return np.asarray(x).dtype.name


# --- hand-derived values -----------------------------------------------------------------

def test_two_samples_one_view_each_hand_value():
    # Two samples, two views, orthogonal classes: a at view 0 and 1 identical, b opposite.
    # Anchor (a, v0): positive (a, v1) with sim 1, negatives (b, v0), (b, v1) with sim -1.
    # L = -log(e^{1/t} / (e^{1/t} + 2 e^{-1/t})) * t, the same for every anchor.
    t = 0.5
    a, b = np.array([1.0, 0.0]), np.array([-1.0, 0.0])
    features = np.array([[a, a], [b, b]])
    expected = -np.log(np.exp(1 / t) / (np.exp(1 / t) + 2 * np.exp(-1 / t))) * t
    got = numpy(contrastive_loss(features, temperature=t))
    assert_close(got, [expected, expected], dtype=dtype_of(got), terms=loss_terms(2, 2, 2))


def test_same_class_positives_hand_value():
    # Three samples with one view each, classes [0, 0, 1], features e1, e1, e2 (sim 1, 0).
    # Anchor 0: positive 1 (sim 1), negative 2 (sim 0): -log(e^{1/t}/(e^{1/t}+1)) * t.
    # Single view: divided once more by the one positive (official semantics). Anchor 2: 0.
    t = 1.0
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    features = np.array([[e1], [e1], [e2]])
    expected = -np.log(np.e / (np.e + 1.0))
    got = numpy(contrastive_loss(features, np.array([0, 0, 1]), temperature=t))
    assert_close(got, [expected, expected, 0.0], dtype=dtype_of(got), terms=loss_terms(3, 1, 2))


def test_only_negatives_hand_value():
    t = 1.0
    e1, e2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    features = np.array([[e1, e1], [e2, e2]])
    # Anchor (0, v0): positive sim 1, negatives sims 0, 0: -(1 - log 2).
    got = numpy(contrastive_loss(features, temperature=t, denominator_mode="only_negatives"))
    assert_close(got, [np.log(2.0) - 1.0] * 2, dtype=dtype_of(got), terms=loss_terms(2, 2, 2))


# --- the reference, every option -------------------------------------------------------

OPTIONS = list(itertools.product(
    ["all", "one"], ["outside", "inside"], ["all", "one_positive", "only_negatives"],
    [-1, 0, 2], [True, False]))


@pytest.mark.parametrize("contrast_mode,summation,denominator,cap,scale", OPTIONS)
@pytest.mark.parametrize("labelled", [True, False])
def test_matches_reference_float64(contrast_mode, summation, denominator, cap, scale, labelled):
    labels = LABELS if labelled else None
    kwargs = dict(temperature=0.3, contrast_mode=contrast_mode, summation_location=summation,
                  denominator_mode=denominator, positives_cap=cap, scale_by_temperature=scale)
    got = numpy(contrastive_loss(FEATURES, labels, **kwargs))
    want = supcon_reference(FEATURES, labels, **kwargs)
    if got.dtype != np.float64:
        pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (tests/test_backends.py sets it)")
    bound = dict(terms=loss_terms(6, 2, 5), magnitude=loss_magnitude(want, 0.3, scale))
    assert_close(got, want, dtype="float64", **bound)
    got32 = numpy(contrastive_loss(FEATURES.astype("float32"), labels, **kwargs))
    assert got32.dtype == np.float32
    assert_close(got32, want, dtype="float32", **bound)


@pytest.mark.parametrize("num_views", [1, 3])
def test_view_counts_match_reference(num_views):
    f = unit(RNG.standard_normal((5, num_views, 4)))
    labels = np.array([0, 1, 1, 0, 2])
    for summation in ("outside", "inside"):
        got = numpy(contrastive_loss(f, labels, temperature=0.5, summation_location=summation))
        assert_close(got, supcon_reference(f, labels, temperature=0.5,
                                           summation_location=summation),
                     dtype=dtype_of(got), terms=loss_terms(5, num_views, 4))


def test_one_hot_and_class_ids_agree_and_multi_hot_matches_reference():
    one_hot = np.eye(3)[LABELS]
    got = numpy(contrastive_loss(FEATURES, one_hot))
    assert_close(got, numpy(contrastive_loss(FEATURES, LABELS)), dtype=dtype_of(got),
                 terms=loss_terms(6, 2, 5))
    multi = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [0, 0, 0], [1, 0, 0]])
    got = numpy(contrastive_loss(FEATURES, multi))
    assert_close(got, supcon_reference(FEATURES, multi), dtype=dtype_of(got),
                 terms=loss_terms(6, 2, 5))


def test_simclr_special_case_is_nt_xent():
    z1, z2 = unit(RNG.standard_normal((7, 6))), unit(RNG.standard_normal((7, 6)))
    features = np.stack([z1, z2], axis=1)
    got = numpy(contrastive_loss(features, None, temperature=0.5, scale_by_temperature=False))
    want = nt_xent_reference(z1, z2, 0.5)
    bound = dict(terms=loss_terms(7, 2, 6), magnitude=loss_magnitude(want, 0.5, False))
    assert_close(got, want, dtype=dtype_of(got), **bound)
    loss = SimCLRLoss(temperature=0.5)  # A Keras Loss: computed in float32.
    assert_close(numpy(loss(None, features)), want.mean(), dtype="float32", **bound)
    # SimCLRLoss ignores labels even when given: the same computation, bit-identical.
    np.testing.assert_array_equal(numpy(loss(np.arange(7), features)),
                                  numpy(loss(None, features)))


def test_no_positive_is_zero_not_nan():
    f = unit(RNG.standard_normal((4, 1, 3)))
    for summation in ("outside", "inside"):
        got = numpy(contrastive_loss(f, np.array([0, 1, 2, 3]), summation_location=summation))
        np.testing.assert_array_equal(got, np.zeros(4))


def test_numerically_stable_at_tiny_temperature():
    got = numpy(contrastive_loss(FEATURES.astype("float32"), LABELS, temperature=1e-4))
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_inputs_computed_in_float32(dtype):
    f = ops.cast(FEATURES, dtype)
    got = contrastive_loss(f, LABELS, temperature=0.5)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    want = supcon_reference(numpy(ops.cast(f, "float32")), LABELS, temperature=0.5)
    # The reference gets the same rounded inputs: only float32 arithmetic differs.
    assert_close(numpy(got), want, dtype="float32", terms=loss_terms(6, 2, 5))


# --- gradients ---------------------------------------------------------------------------

def _gradient(features, labels, kwargs, weights):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(contrastive_loss(x, labels, **kwargs) * weights)
        return tape.gradient(loss, x).numpy()
    import jax

    return np.asarray(jax.grad(
        lambda x: (contrastive_loss(x, labels, **kwargs) * weights).sum())(features))


@pytest.mark.parametrize("contrast_mode,summation,denominator,cap", [
    ("all", "outside", "all", -1), ("one", "inside", "one_positive", 2),
    ("all", "inside", "only_negatives", 0), ("one", "outside", "all", -1)])
def test_gradient_matches_finite_differences_of_reference(contrast_mode, summation, denominator,
                                                          cap):
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("float64 on JAX needs JAX_ENABLE_X64=1 (tests/test_backends.py sets it)")
    f = unit(RNG.standard_normal((4, 2, 3)))  # The loss takes unit rows (it refuses others).
    labels = np.array([0, 1, 0, 1])
    weights = RNG.random(4)
    kwargs = dict(temperature=0.5, contrast_mode=contrast_mode, summation_location=summation,
                  denominator_mode=denominator, positives_cap=cap)
    got = _gradient(f, labels, kwargs, weights)
    value = abs(float(np.dot(supcon_reference(f, labels, **kwargs), weights)))
    eps = 1e-6
    want = np.zeros_like(f)
    for idx in np.ndindex(f.shape):
        up, down = f.copy(), f.copy()
        up[idx] += eps
        down[idx] -= eps
        want[idx] = (np.dot(supcon_reference(up, labels, **kwargs), weights)
                     - np.dot(supcon_reference(down, labels, **kwargs), weights)) / (2 * eps)
    # Central differences lose the reference's rounding (terms x eps x |loss|) divided by
    # the step: magnitude |loss| / eps (their O(eps^2) truncation, ~1e-12, is far below).
    terms = loss_terms(4, 2, 3)
    assert_close(got, want, dtype="float64", terms=terms, magnitude=max(1.0, value) / eps)
    got32 = _gradient(f.astype("float32"), labels, kwargs, weights.astype("float32"))
    assert_close(got32, want, dtype="float32", terms=terms)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(contrast_mode="every"), "contrast_mode"),
    (dict(summation_location="middle"), "summation_location"),
    (dict(denominator_mode="some"), "denominator_mode"),
    (dict(positives_cap=3), "positives_cap"),
    (dict(positives_cap=-2), "positives_cap"),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        contrastive_loss(FEATURES, LABELS, **kwargs)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="rank 3"):
        contrastive_loss(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="at least 1 view"):
        contrastive_loss(np.zeros((4, 0, 5)))
    with pytest.raises(ValueError, match="batch size"):
        contrastive_loss(FEATURES, np.array([0, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        contrastive_loss(FEATURES, np.array([0, 1, -1, 0, 1, 0]))
    with pytest.raises(ValueError, match="labels"):
        contrastive_loss(FEATURES, np.zeros((6, 2, 2)))


def test_loss_classes_bad_options_raise_at_construction():
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0)
    with pytest.raises(ValueError, match="contrast_mode"):
        SimCLRLoss(contrast_mode="x")


# --- Loss classes ---------------------------------------------------------------------

def test_supcon_loss_class_defaults_and_reduction():
    loss = SupConLoss(temperature=0.2)
    assert loss.scale_by_temperature and not SimCLRLoss().scale_by_temperature
    want = supcon_reference(FEATURES, LABELS, temperature=0.2).mean()
    terms = loss_terms(6, 2, 5)  # A Keras Loss: computed in float32.
    assert_close(numpy(loss(LABELS, FEATURES)), want, dtype="float32", terms=terms)
    weights = np.array([1.0, 0, 0, 0, 0, 0])
    assert_close(numpy(loss(LABELS, FEATURES, sample_weight=weights)),
                 supcon_reference(FEATURES, LABELS, temperature=0.2)[0] / 6, dtype="float32",
                 terms=terms)


@pytest.mark.parametrize("cls", [SupConLoss, SimCLRLoss])
def test_loss_serialization_round_trip(cls):
    loss = cls(temperature=0.3, summation_location="inside", positives_cap=2)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and restored.get_config() == loss.get_config()
    # The same computation on the same inputs: bit-identical.
    np.testing.assert_array_equal(numpy(restored(LABELS, FEATURES)),
                                  numpy(loss(LABELS, FEATURES)))
