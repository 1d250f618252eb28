"""A memory bank: one L2-normalized feature per training sample, as Keras state.

InstDisc's V (Wu et al., CVPR 2018, Sec. 3.1): row i holds the feature of training
sample i, read as its positive and drawn uniformly as noise for the others, then moved
towards the sample's new feature. Held in non-trainable Keras variables, so the bank
is checkpointed, saved in `.keras` files and updated inside the compiled train step on
TensorFlow and JAX, like `FeatureQueue`.

    bank = MemoryBank(size=50_000, dim=128, momentum=0.5)
    positives = bank.rows(index)            # read first...
    noise = bank.rows(bank.draw(index, m))  # [batch, m, dim]
    bank.update(features, index)            # ...then write

* Rows start as the released code's uniform random vectors, L2-normalized (drawn from
  `seed` with NumPy, so every replica and every backend starts from the same bank).
* `update(features, index)` writes the **global** batch: features and indices are
  gathered across replicas (`distribute.cross_replica_concat`), each row becomes
  normalize(momentum x v_i + (1 - momentum) x f_i) (the released code, momentum 0.5),
  and the step count (the seed of the next noise draw) moves on. Every replica computes
  the same rows; the variables use `aggregation="only_first_replica"`. A sample twice in
  one global batch keeps one of its two updates.
* `draw(index, m)` gives m uniform noise rows per sample: one stateless draw for the
  global batch from (seed, step), of which each replica takes its own samples' rows, so
  1, 2 or 4 replicas train on the noise one device draws.
* `normalizer` holds Z of the NCE (`supcon_tf.losses.instdisc`), -1 until estimated.
"""

import keras
import numpy as np
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import concrete
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_probability


def uniform_ints(shape, maxval, seed, step):
    """Uniform int32 in [0, maxval) of `shape`, a function of (seed, step) alone: the
    backends' stateless generators (TensorFlow's, JAX's), keyed by a step tensor."""
    step = ops.cast(step, "int32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(shape, seed=tf.stack([tf.constant(seed, tf.int32),
                                                                 step]),
                                           minval=0, maxval=maxval, dtype=tf.int32)
    if keras.backend.backend() == "jax":
        import jax

        key = jax.random.fold_in(jax.random.PRNGKey(seed), step)
        return jax.random.randint(key, shape, 0, maxval, dtype="int32")
    raise ValueError("The memory bank's noise draws run on the TensorFlow and JAX backends; "
                     f"received KERAS_BACKEND={keras.backend.backend()!r}.")


def check_index(index, size, name="index"):
    """Raises ValueError if `index` (when its values are known now) leaves [0, size)."""
    values = concrete(index)
    if values is None or not values.size:
        return index
    if values.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer sample indices; received dtype "
                         f"{values.dtype}.")
    if values.min() < 0 or values.max() >= size:
        raise ValueError(
            f"`{name}` must hold sample indices in [0, bank_size={size}) (one bank row per "
            f"training sample); received indices in [{values.min()}, {values.max()}]. Set "
            "`bank_size` to the number of training samples.")
    return index


@register
class MemoryBank(keras.layers.Layer):
    """`size` L2-normalized rows of `dim` features, updated by momentum; see the module."""

    def __init__(self, size, dim, momentum=0.5, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.size = check_int("size", size, minimum=1)
        self.dim = check_int("dim", dim, minimum=1)
        self.momentum = float(check_probability("momentum", momentum))
        self.seed = check_int("seed", seed, minimum=0)
        state = dict(trainable=False, aggregation="only_first_replica")
        self._values = self.add_weight(shape=(self.size, self.dim), dtype="float32",
                                       initializer=self._initial_rows, name="values", **state)
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    name="step", **state)
        self.normalizer = self.add_weight(shape=(), dtype="float32", name="normalizer",
                                          initializer=keras.initializers.Constant(-1.0),
                                          **state)
        self.built = True

    def _initial_rows(self, shape, dtype=None):
        rows = np.random.default_rng(self.seed).uniform(-1.0, 1.0, shape).astype("float32")
        rows /= np.linalg.norm(rows, axis=-1, keepdims=True)
        return ops.convert_to_tensor(rows, dtype or "float32")

    @property
    def values(self):
        """[size, dim] float32: the bank's rows."""
        return self._values.value

    def valid(self, index):
        """Scalar bool: every index lies in [0, size) (for a compiled step's guard)."""
        index = ops.cast(index, "int32")
        return ops.logical_and(ops.all(index >= 0), ops.all(index < self.size))

    def rows(self, index):
        """The rows `index` ([...] int) of the bank, [..., dim] (indices clipped in range)."""
        check_index(index, self.size)
        return ops.take(self.values, ops.clip(ops.cast(index, "int32"), 0, self.size - 1),
                        axis=0)

    def draw(self, index, num):
        """[batch, num] uniform noise indices for the local samples `index` [batch]."""
        everyone, offset = distribute.cross_replica_concat(ops.cast(index, "int32"))
        drawn = uniform_ints((ops.shape(everyone)[0], int(num)), self.size, self.seed,
                             self.step.value)
        return ops.slice(drawn, (offset, 0), (ops.shape(index)[0], int(num)))

    def update(self, features, index):
        """Moves rows `index` towards the global batch's `features` [batch, dim]."""
        check_index(index, self.size)
        features = ops.normalize(ops.stop_gradient(ops.cast(features, "float32")), axis=-1)
        features, _ = distribute.cross_replica_concat(features)
        index = distribute.cross_replica_concat(ops.cast(index, "int32"))[0]
        clipped = ops.clip(index, 0, self.size - 1)
        old = ops.take(self.values, clipped, axis=0)
        new = ops.normalize(self.momentum * old + (1.0 - self.momentum) * features, axis=-1)
        inside = ops.logical_and(index >= 0, index < self.size)[:, None]
        new = ops.where(inside, new, old)  # Out of range: the loss is NaN, `fit` stops.
        self._values.assign(ops.scatter_update(self.values, clipped[:, None], new))
        self.step.assign(self.step.value + 1)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, dim=self.dim, momentum=self.momentum, seed=self.seed)
        return config
