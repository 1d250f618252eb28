"""The gradient of a loss function on the current backend, for checks against references."""

import keras
import numpy as np


def gradient(fn, x, weights):
    """d sum(fn(x) * weights) / dx on the current backend (zeros where none flows)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        g = tape.gradient(loss, x)
        return np.zeros(x.shape) if g is None else g.numpy()
    import jax

    return np.asarray(jax.grad(lambda x: (fn(x) * weights).sum())(x))
