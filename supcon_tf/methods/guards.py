"""What every model's `fit` checks: its input arrays before training, its loss every step.

`NonFiniteLossGuard` stops `fit` with `NonFiniteLossError` at the first step whose
loss is NaN or infinite. It runs before any other callback of that step, so a
checkpoint callback never saves the diverged weights: the last checkpoint written
stays the last good one. Methods make sure a non-finite input yields a non-finite
loss (never a finite number computed from masked NaNs), so bad images or features
are caught here too, at no cost beyond reading the loss Keras already logs.

`check_arrays` checks in-memory `(x, y)` given to `fit` (NumPy arrays or eager
tensors; a `tf.data.Dataset` or generator is checked by its element spec only):
empty inputs, non-finite values, label and input lengths that differ.
"""

import keras
import numpy as np
from keras import ops

from supcon_tf.inputs import check_label_dtype, check_label_values, concrete as _concrete


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; raised by `NonFiniteLossGuard`."""

    def __init__(self, step, value, metric="loss"):
        self.step, self.value, self.metric = int(step), float(value), metric
        super().__init__(
            f"Training stopped at step {self.step}: the {metric} is {self.value} (not finite). "
            "No weights of this step or later were saved; the last checkpoint written is "
            "intact. Check the inputs for NaN or infinite values, or lower the learning rate."
        )


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the end of the first step with a non-finite loss.

    The step is the optimizer's iteration count (a resumed run keeps counting).
    """

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if value is None:
            return
        value = float(ops.convert_to_numpy(value))
        if not np.isfinite(value):
            optimizer = getattr(self.model, "optimizer", None)
            step = int(ops.convert_to_numpy(optimizer.iterations)) if optimizer else batch + 1
            raise NonFiniteLossError(step, value)


def with_guard(callbacks, enabled=True):
    """`callbacks` with a `NonFiniteLossGuard` first (unless there is one, or disabled)."""
    callbacks = list(callbacks or ())
    if enabled and not any(isinstance(c, NonFiniteLossGuard) for c in callbacks):
        callbacks.insert(0, NonFiniteLossGuard())
    return callbacks


def _in_memory(value):
    """`value` as a NumPy array if it is an in-memory array or eager tensor, else None
    (None, nests, datasets and symbolic tensors: the loss core's `_concrete` decides)."""
    if value is None or isinstance(value, (dict, list, tuple)) or _is_dataset(value):
        return None
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        return None
    values = _concrete(value)
    return None if values is None else np.asarray(values)


def _is_dataset(value):
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec")


def _spec_labels(dataset):
    """The label spec of a `tf.data.Dataset` of `(x, y[, w])`, or None if it has no labels."""
    spec = dataset.element_spec
    if isinstance(spec, (tuple, list)) and len(spec) >= 2:
        return spec[1]
    return None


def check_arrays(x, y=None, requires_labels=False, who="fit"):
    """Raises ValueError for inputs `fit` would train on silently or fail on obscurely."""
    if _is_dataset(x):
        labels = _spec_labels(x)
        if requires_labels and labels is None:
            raise ValueError(f"`{who}` needs labels, but the dataset yields no `(views, labels)` "
                             "pairs; add the labels (or use a self-supervised method).")
        if labels is not None and hasattr(labels, "dtype") and labels.shape.rank is not None:
            check_label_dtype(labels.dtype, labels.shape.rank)
        return
    xv, yv = _in_memory(x), _in_memory(y)
    if requires_labels and y is None:
        raise ValueError(f"`{who}` needs labels: pass `y` (class ids or one-/multi-hot rows).")
    if xv is not None:
        if xv.shape[:1] == (0,):
            raise ValueError(f"`x` of `{who}` is empty (shape {xv.shape}); it must hold at "
                             "least one sample.")
        if np.issubdtype(xv.dtype, np.floating) and not np.all(np.isfinite(xv)):
            bad = int(np.sum(~np.isfinite(xv)))
            raise ValueError(f"`x` of `{who}` must be finite; it holds {bad} NaN or infinite "
                             f"value(s) (shape {xv.shape}).")
    if yv is not None:
        if yv.ndim not in (1, 2):
            raise ValueError(f"`y` (labels) of `{who}` must be class ids [N] or one-/multi-hot "
                             f"[N, num_classes]; received shape {yv.shape}.")
        check_label_dtype(yv.dtype, yv.ndim)
        check_label_values(yv)
    if xv is not None and yv is not None and len(xv) != len(yv):
        raise ValueError(f"`y` (labels) and `x` (views or images) of `{who}` must hold the "
                         f"same number of samples; received {len(yv)} labels for {len(xv)} "
                         f"samples (x shape {xv.shape}, y shape {yv.shape}).")


def nan_unless_finite(loss, *tensors):
    """`loss`, or NaN if any of `tensors` (nests allowed, None skipped) is not finite.

    The inputs are checked as well as the outputs: a NaN image does not always reach
    the output (a fused ReLU kernel may return 0 for NaN), yet poisons BatchNorm.
    """
    # Integer tensors (uint8 images augmented on the device) are finite by type; their
    # static batch size may be unknown (a multi-worker batch), which `isfinite` of an
    # integer tensor cannot take.
    tensors = [t for t in keras.tree.flatten(tensors) if t is not None
               and "float" in keras.backend.standardize_dtype(t.dtype)]
    if not tensors:
        return loss
    finite = ops.all(ops.stack([ops.all(ops.isfinite(t)) for t in tensors]))
    return ops.where(finite, loss, ops.cast(float("nan"), loss.dtype))


class GuardedFit:
    """Mixin for `keras.Model`s: `fit` checks its arrays first and stops on a non-finite loss.

    Set `check_finite = False` on a model to train without the loss guard.
    """

    requires_labels = False  # `fit` without labels is an error (e.g. SupCon).
    check_finite = True

    def check_labels(self, labels):
        """Hook: model-specific checks of in-memory labels (NumPy), e.g. their range."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' build from a first batch, skipped when there is nothing left to build.

        Under an explicit `tf.distribute` strategy Keras (3.15) pulls a first batch of a
        `fit`'s data to build the model symbolically, then starts the data again: a
        second pass over a dataset that reshuffles and augments anew on each pass, so
        the run would train on other batches than on one device. A built model (the
        command line builds every model and optimizer first) needs no such pass.
        """
        unbuilt = (not all(layer.built for layer in self._flatten_layers())
                   or getattr(self._compile_metrics, "built", True) is False
                   or getattr(self._compile_loss, "built", True) is False
                   or (self.optimizer is not None and not self.optimizer.built))
        if unbuilt:
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            **kwargs):
        check_arrays(x, y, self.requires_labels, who=f"{type(self).__name__}.fit")
        labels = _in_memory(y)
        if labels is not None:
            self.check_labels(labels)
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                           callbacks=with_guard(callbacks, self.check_finite), **kwargs)
