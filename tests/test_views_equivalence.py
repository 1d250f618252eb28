"""Host (tf.data map) and device (a compiled function on the Keras backend) augmentation draw
from the same distribution: crop-area, brightness and whole-policy histograms, on CPU."""

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import ks_2samp

from supcon_tf import views
from tolerance import bound, is_close

N, BATCH, SIDE = 2000, 200, 24
KS_LIMIT = 0.07  # Two-sample KS critical value at alpha ~ 1e-3 for 2000 vs 2000 is 0.062.


def ramp_images():
    """Channel 0 holds x / (W-1), channel 1 y / (H-1), channel 2 a constant 0.5."""
    r = np.linspace(0.0, 1.0, SIDE, dtype="float32")
    one = np.stack([np.tile(r[None, :], (SIDE, 1)), np.tile(r[:, None], (1, SIDE)),
                    np.full((SIDE, SIDE), 0.5, "float32")], -1)
    return np.tile(one[None], (N, 1, 1, 1))


def compiled(layer):
    """layer(batch) inside one jit-compiled function of the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        layer(ramp_images()[:2])  # Build (creates the seed state).
        state = [v.value for v in layer.non_trainable_variables]

        @jax.jit
        def step(state, x):
            return layer.stateless_call([], state, x, training=True)

        def run(x):
            nonlocal state
            out, state = step(state, x)
            return np.asarray(out)

        return run
    fn = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    return lambda x: fn(tf.constant(x)).numpy()


def device_outputs(layer):
    run = compiled(layer)
    images = ramp_images()
    return np.concatenate([run(images[i:i + BATCH]) for i in range(0, N, BATCH)])


def host_outputs(layer):
    ds = tf.data.Dataset.from_tensor_slices(ramp_images()).batch(BATCH)
    ds = ds.map(lambda x: layer(x, training=True), num_parallel_calls=2)
    return np.concatenate([x.numpy() for x in ds])


def crop_area(out):
    """Box area fraction from the ramps: span of x times span of y (output 12x12)."""
    n = out.shape[1]
    span_x = (out[:, :, -1, 0] - out[:, :, 0, 0]).mean(1) * n / (n - 1) * (SIDE - 1) / SIDE
    span_y = (out[:, -1, :, 1] - out[:, 0, :, 1]).mean(1) * n / (n - 1) * (SIDE - 1) / SIDE
    return span_x * span_y


def crop(seed, area_range=(0.08, 1.0)):
    return views.RandomResizedCrop((12, 12), area_range=area_range, seed=seed)


def test_crop_area_histograms_match():
    host = crop_area(host_outputs(crop(1)))
    device = crop_area(device_outputs(crop(2)))
    assert ks_2samp(host, device).statistic < KS_LIMIT
    # The statistic sees a different area range: the comparison can fail.
    other = crop_area(device_outputs(crop(3, area_range=(0.2, 1.0))))
    assert ks_2samp(host, other).statistic > 2 * KS_LIMIT
    # And both estimate the box area (uniform on [0.08, 1] where it fits): statistical
    # bounds on samples, not rounding bounds.
    assert 0.06 < host.min() and host.max() < 1.02 and abs(np.median(host) - 0.52) < 0.06


def brightness(seed):
    return views.ColorJitter(brightness=0.8, contrast=0, saturation=0, hue=0, p=0.8, seed=seed)


def test_brightness_histograms_match():
    host = host_outputs(brightness(1))[:, 0, 0, 2] / 0.5      # the factor on the 0.5 channel
    device = device_outputs(brightness(2))[:, 0, 0, 2] / 0.5
    assert ks_2samp(host, device).statistic < KS_LIMIT
    for factors in (host, device):                             # p = 0.8 of U[0.2, 1.8]
        # A fraction 0.2 +- 0.03 of unchanged pixels (statistical); "unchanged" and the
        # range ends: a float32 product and a division by 0.5 (tests/tolerance.py, terms 2).
        unchanged = [is_close(f, 1.0, dtype="float32", terms=2) for f in factors]
        assert abs(np.mean(unchanged) - 0.2) < 0.03
        tol = bound([1.8], dtype="float32", terms=2)
        assert 0.2 - tol <= factors.min() and factors.max() <= 1.8 + tol


def test_whole_cifar_policy_pixel_statistics_match():
    host = host_outputs(views.get("cifar", image_size=(12, 12), seed=1))
    device = device_outputs(views.get("cifar", image_size=(12, 12), seed=2))
    for stat in (lambda o: o.mean(axis=(1, 2, 3)), lambda o: o.std(axis=(1, 2, 3))):
        assert ks_2samp(stat(host), stat(device)).statistic < KS_LIMIT
