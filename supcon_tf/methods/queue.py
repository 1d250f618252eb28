"""A FIFO queue of L2-normalized features (and optionally class ids) as Keras state.

The memory of MoCo (He et al. 2020) and supervised MoCo here, and of SwAV's queue
(Caron et al. 2020): `size` rows of `dim` features held in non-trainable Keras
variables with a write pointer, so the queue is checkpointed, saved in `.keras`
files and updated inside the compiled train step on TensorFlow and JAX.

    queue = FeatureQueue(size=4096, dim=128, with_labels=True)
    logits = ops.matmul(queries, ops.transpose(queue.values))   # read first...
    queue.enqueue(keys, labels)                                 # ...then write

* `enqueue(values, labels=None)` writes the **global** batch: it gathers `values`
  (and `labels`) across replicas with `supcon_tf.distribute.cross_replica_concat`,
  L2-normalizes and stops the gradient, and writes the rows at the pointer, wrapping
  around the end; the pointer then moves on by the global batch size. The oldest rows
  are overwritten first. Call it after the loss has read `values`: the loss of a step
  sees the queue as it was before the step.
* `values` [size, dim] float32, `labels` [size] int32 (-1 where never written),
  `pointer` (next row to write), `count` (rows written so far, at most `size`) and
  `filled` ([size] bool: rows that hold a real entry). Rows start as zeros; losses
  should mask them with `filled` (MoCo's code starts from random keys instead).
* A global batch larger than `size` raises a `ValueError` (where the batch size is
  known when the step is traced; with an unknown batch size only the last `size`
  rows of the batch are written).
* Under a `tf.distribute` strategy every replica computes the same global rows; the
  variables use `aggregation="only_first_replica"`, so replica 0's write is the one
  kept, identical on all replicas.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


@register
class FeatureQueue(keras.layers.Layer):
    """`size` L2-normalized rows of `dim` features (and class ids with `with_labels`)."""

    def __init__(self, size, dim, with_labels=False, **kwargs):
        super().__init__(**kwargs)
        check_positive("size", size)
        check_positive("dim", dim)
        self.size = int(size)
        self.dim = int(dim)
        self.with_labels = bool(with_labels)
        state = dict(trainable=False, aggregation="only_first_replica")
        self._values = self.add_weight(shape=(self.size, self.dim), initializer="zeros",
                                       dtype="float32", name="values", **state)
        self._labels = None
        if self.with_labels:
            self._labels = self.add_weight(shape=(self.size,), dtype="int32", name="labels",
                                           initializer=keras.initializers.Constant(-1),
                                           **state)
        self.pointer = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                       name="pointer", **state)
        self.count = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                     name="count", **state)
        self.built = True

    @property
    def values(self):
        """[size, dim] float32: the queued rows (zeros where never written)."""
        return self._values.value

    @property
    def labels(self):
        """[size] int32 class ids (-1 where never written); None without `with_labels`."""
        return None if self._labels is None else self._labels.value

    @property
    def filled(self):
        """[size] bool: True for the rows written at least once."""
        return ops.less(ops.arange(self.size, dtype="int32"), self.count.value)

    def enqueue(self, values, labels=None):
        """Writes the global batch of `values` [batch, dim] (and `labels` [batch])."""
        if self.with_labels and labels is None:
            raise ValueError("`labels` must be given to `enqueue` on a queue built with "
                             "with_labels=True; received labels=None.")
        if len(values.shape) != 2 or values.shape[-1] != self.dim:
            raise ValueError(f"`values` must have shape [batch, {self.dim}]; received "
                             f"shape {tuple(values.shape)}.")
        values = ops.normalize(ops.stop_gradient(ops.cast(values, "float32")), axis=-1)
        values, _ = distribute.cross_replica_concat(values)
        if self.with_labels:
            labels = distribute.cross_replica_concat(ops.cast(labels, "int32"))[0]
        batch = values.shape[0]
        if batch is not None and batch > self.size:
            raise ValueError(
                f"`size` of the queue ({self.size}) must be at least the global batch "
                f"size; received a global batch of {batch} rows. Raise the queue size "
                "(e.g. MoCo's `queue_size`) or lower the batch size.")
        if batch is None:  # Unknown when traced: keep at most the newest `size` rows.
            values = values[-self.size:]
            labels = None if labels is None else labels[-self.size:]
        n = ops.shape(values)[0]
        rows = ops.mod(self.pointer.value + ops.arange(n, dtype="int32"), self.size)
        rows = ops.expand_dims(rows, 1)
        self._values.assign(ops.scatter_update(self._values.value, rows, values))
        if self.with_labels:
            self._labels.assign(ops.scatter_update(self._labels.value, rows, labels))
        n = ops.cast(n, "int32")
        self.pointer.assign(ops.mod(self.pointer.value + n, self.size))
        self.count.assign(ops.minimum(self.count.value + n, self.size))

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, dim=self.dim, with_labels=self.with_labels)
        return config
