"""What every augmenter shares: uint8/float input to float32 in [0, 1], seeding, tf.data.

An augmenter is a Keras layer built on Keras' `DataLayer`: its ops go through
`self.backend`, which is the Keras backend inside a compiled train step (JAX or
TensorFlow, XLA-compatible) and TensorFlow inside a `tf.data` pipeline whatever
the backend, so one object runs on the host and on the accelerator. Randomness
comes from a `keras.random.SeedGenerator` built from `seed`.
"""

import keras

try:  # Keras >= 3.11 names it DataLayer; earlier 3.x releases TFDataLayer.
    from keras.src.layers.preprocessing.data_layer import DataLayer
except ImportError:  # pragma: no cover
    from keras.src.layers.preprocessing.tf_data_layer import TFDataLayer as DataLayer

from supcon_tf.registry import register


def _is_tf_tensor(x):
    return type(x).__module__.startswith("tensorflow")


def to_unit_float(images):
    """uint8 images -> float32 / 255; float images are taken to be in [0, 1] already."""
    if _is_tf_tensor(images):
        import tensorflow as tf

        if images.dtype == tf.uint8:
            return tf.cast(images, tf.float32) / 255.0
        return tf.cast(images, tf.float32)
    images = keras.ops.convert_to_tensor(images)
    if keras.backend.standardize_dtype(images.dtype) == "uint8":
        return keras.ops.cast(images, "float32") / 255.0
    return keras.ops.cast(images, "float32")


def check_size(name, size):
    """(height, width) from an int or a pair of positive ints."""
    received = size
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size) if isinstance(size, (list, tuple)) else None
    if size is None or len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(
            f"`{name}` must be a positive int or a pair (height, width) of positive ints; "
            f"received {name}={received!r}."
        )
    return size


def check_range(name, value, low=None, high=None):
    """A pair (lo, hi) with lo <= hi, optionally inside [low, high]."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and value[0] <= value[1]
    ok = ok and (low is None or value[0] >= low) and (high is None or value[1] <= high)
    if not ok:
        bounds = f" inside [{low}, {high}]" if low is not None or high is not None else ""
        raise ValueError(
            f"`{name}` must be a pair (min, max) with min <= max{bounds}; "
            f"received {name}={value!r}."
        )
    return tuple(float(v) for v in value)


class Augmenter(DataLayer):
    """Base augmenter: images [b, H, W, C] (or one image [H, W, C]) -> float32 in [0, 1].

    Subclasses implement `augment(images, training)` on a float32 batch with the
    ops of `self.backend` and draw randomness with `self.seed_generator()`.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def __call__(self, images, training=True, **kwargs):
        return super().__call__(to_unit_float(images), training=training, **kwargs)

    def seed_generator(self):
        return self._get_seed_generator(self.backend._backend)

    def uniform(self, shape, minval=0.0, maxval=1.0):
        return self.backend.random.uniform(shape, minval=minval, maxval=maxval,
                                           seed=self.seed_generator())

    def call(self, images, training=True):
        images = self.backend.cast(images, "float32")
        single = len(images.shape) == 3
        if single:
            images = self.backend.numpy.expand_dims(images, 0)
        if len(images.shape) != 4:
            raise ValueError(
                f"{type(self).__name__} expects images [batch, height, width, channels] or "
                f"[height, width, channels]; received shape {tuple(images.shape)}."
            )
        out = self.augment(images, training)
        return out[0] if single else out

    def augment(self, images, training):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


@register
class Compose(Augmenter):
    """Applies `layers` in order (each an augmenter or a Keras image layer on [0, 1])."""

    def __init__(self, layers, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stages = [keras.layers.deserialize(l) if isinstance(l, dict) else l for l in layers]

    def augment(self, images, training):
        for layer in self.stages:
            images = layer(images, training=training)
        return self.backend.cast(images, "float32")

    def compute_output_shape(self, input_shape):
        for layer in self.stages:
            input_shape = layer.compute_output_shape(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["layers"] = [keras.layers.serialize(l) for l in self.stages]
        return config
