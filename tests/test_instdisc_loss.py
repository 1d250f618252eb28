"""InstDisc's NCE loss against its float64 NumPy statement (tests/ssl_reference.py), value
and gradient, with Z fixed (the released code) and per sample (the paper's formula), and the
memory bank's noise draws; on TensorFlow and JAX (tests/test_backends.py). The method itself:
tests/test_instdisc.py."""

import numpy as np
import pytest
from keras import ops

from _gradient import gradient
from ssl_reference import instdisc_reference
from supcon_tf.losses import InstDiscLoss, instdisc_loss
from supcon_tf.methods import MemoryBank
from tolerance import assert_close

RNG = np.random.default_rng(0)


def _unit(shape, dtype="float64"):
    x = RNG.standard_normal(shape)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("normalizer", [None, 30.0, "per_row"])
@pytest.mark.parametrize("proximal", [0.0, 30.0])
def test_nce_loss_and_gradient_match_reference(normalizer, proximal):
    f, v, noise = _unit((4, 6)), _unit((4, 6)), _unit((4, 7, 6))
    z = RNG.uniform(10.0, 50.0, 4) if normalizer == "per_row" else normalizer
    want, want_grad = instdisc_reference(f, v, noise, 100, 0.07, proximal, z)
    magnitude = max(1.0, float(np.abs(want).max()))

    def loss(x):
        return instdisc_loss(x, v, noise, 100, temperature=0.07, proximal=proximal, normalizer=z)

    assert_close(ops.convert_to_numpy(loss(f)), want, dtype="float64", terms=7 * 6,
                 magnitude=magnitude)
    assert_close(gradient(loss, f, np.ones(4)), want_grad, dtype="float64", terms=7 * 6,
                 magnitude=max(magnitude, float(np.abs(want_grad).max())))
    # The Loss class in float32: the batch mean.
    inputs = dict(features=f, positives=v, noise=noise, bank_size=100)
    if z is not None:
        inputs["normalizer"] = z
    got = InstDiscLoss(temperature=0.07, proximal=proximal)(None, inputs)
    assert_close(float(got), want.mean(), terms=4 * 7 * 6, magnitude=magnitude)
    # Another temperature is another value.
    assert not np.allclose(ops.convert_to_numpy(instdisc_loss(f, v, noise, 100, temperature=0.5,
                                                         proximal=proximal, normalizer=z)),
                           want)


def test_nce_loss_refuses_bad_input_by_name():
    f, v, noise = _unit((4, 6)), _unit((4, 6)), _unit((4, 7, 6))
    with pytest.raises(ValueError, match="`noise` must have rank 3"):
        instdisc_loss(f, v, noise[:, 0], 100)
    with pytest.raises(ValueError, match="`features` must hold L2-normalized rows"):
        instdisc_loss(2 * f, v, noise, 100)
    with pytest.raises(ValueError, match="bank_size"):
        instdisc_loss(f, v, noise, 0)
    with pytest.raises(ValueError, match="proximal"):
        InstDiscLoss(proximal=-1.0)


def test_noise_draws_are_uniform_and_a_function_of_the_step():
    bank = MemoryBank(10, 3, seed=1)
    index = np.arange(4)
    first = ops.convert_to_numpy(bank.draw(index, 2500))
    assert first.shape == (4, 2500) and first.min() >= 0 and first.max() < 10
    counts = np.bincount(first.ravel(), minlength=10)
    assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(1000))  # 10,000 draws over 10 rows.
    np.testing.assert_array_equal(ops.convert_to_numpy(bank.draw(index, 2500)), first)
    bank.step.assign(1)
    assert np.mean(ops.convert_to_numpy(bank.draw(index, 2500)) == first) < 0.2
    np.testing.assert_allclose(np.linalg.norm(np.array(bank.values), axis=-1), 1.0, rtol=1e-6)
