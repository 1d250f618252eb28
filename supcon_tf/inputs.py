"""Checks of the arrays every public function takes: finite values, shapes, class ids, unit rows.

One rule, one place: losses, evaluation functions, data loaders and `fit` call these,
so a NaN, a float class id or a mismatched shape gets the same message everywhere,
naming the parameter and echoing what was received. Value checks run where values
are known now (eager tensors, NumPy); inside a compiled step they cost nothing and do
nothing, and there a non-finite input makes the loss NaN, which `fit` stops on
(`supcon_tf.methods.guards`).
"""

import numpy as np
from keras import ops

# Worst-case rounding of a dot product of `dim` terms is dim * eps (Higham, Sec. 3.1);
# 8 covers the rounding of the normalization that produced the row.
_UNIT_SAFETY = 8.0
# Rows normalized under mixed precision and cast up (the coarsest precision the package
# trains in, bfloat16: eps 2**-7) keep their norm within a few of its roundings of 1.
_UNIT_FLOOR = 4 * 2.0 ** -7


def concrete(x):
    """`x` as a NumPy array when its value is known now (eager, NumPy), else None."""
    if x is None:
        return None
    try:
        return ops.convert_to_numpy(x)
    except Exception:  # Symbolic (tf.function) or traced (jax.jit) values.
        return None


def check_finite(name, x):
    """Raises ValueError if `x` (when known now) holds NaN or infinite values; returns x."""
    values = concrete(x)
    if values is not None and values.dtype.kind in "fc" and not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(
            f"`{name}` must be finite; received {bad} NaN or infinite value(s) of "
            f"{values.size} (shape {tuple(values.shape)})."
        )
    return x


def check_rank(name, x, rank, layout):
    """Raises ValueError unless `x` has rank `rank` (layout: e.g. "[batch, dim]")."""
    shape = tuple(x.shape)
    if len(shape) != rank:
        raise ValueError(f"`{name}` must have rank {rank}, shape {layout}; received shape "
                         f"{shape}.")
    return x


def check_same_size(name, x, other_name, other, axis=0, what="batch size"):
    """Raises ValueError if `x` and `other` (static shapes) differ along `axis`."""
    a, b = x.shape[axis], other.shape[axis]
    if a is not None and b is not None and a != b:
        raise ValueError(
            f"`{name}` {what} ({a}) must equal `{other_name}`'s ({b}); received shapes "
            f"{name}={tuple(x.shape)} and {other_name}={tuple(other.shape)}."
        )


def check_label_dtype(dtype, rank, name="labels"):
    """Class ids [batch] must be integers; one-/multi-hot [batch, classes] may be any number."""
    dtype_name = str(getattr(dtype, "name", dtype))
    if rank == 1 and "int" not in dtype_name:
        raise ValueError(
            f"`{name}` given as class ids (shape [batch]) must have an integer dtype; received "
            f"dtype {dtype_name}. Cast integral ids with `labels.astype('int32')`; fractional "
            "values are not class ids."
        )


def check_label_values(values, name="labels", num_classes=None):
    """Raises for negative class ids (or ids >= `num_classes`), or one-/multi-hot entries
    other than 0 and 1 (NumPy values; None is skipped)."""
    if values is None or not values.size:
        return
    if values.ndim == 1:
        if values.min() < 0:
            raise ValueError(
                f"`{name}` must be non-negative class ids; received a minimum of {values.min()}."
            )
        if num_classes is not None and values.max() >= num_classes:
            raise ValueError(
                f"`{name}` must be class ids in [0, {num_classes}) (num_classes={num_classes}); "
                f"received a maximum of {values.max()}."
            )
        return
    binary = (values == 0) | (values == 1)
    if not np.all(binary):
        raise ValueError(
            f"`{name}` given as one-/multi-hot rows (shape [batch, num_classes]) must hold only "
            f"0 and 1; received {values[~binary].ravel()[:3].tolist()} among them."
        )


def check_labels(name, labels, num_classes=None):
    """The label rule: integer class ids >= 0 (< num_classes if given) [n], or 0/1 rows
    [n, classes]; checks dtype always and values when known now. Returns labels."""
    check_label_dtype(labels.dtype, len(labels.shape), name)
    check_label_values(concrete(labels), name, num_classes)
    return labels


def class_ids(labels, name="labels"):
    """Integer class ids [n] (NumPy) from class ids [n] / [n, 1] or one-hot rows [n, classes],
    under the label rule (float ids such as 0.5 are refused, not truncated)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:
        check_labels(name, labels)
        labels = np.argmax(labels, axis=-1)
    elif labels.ndim != 1:
        raise ValueError(
            f"`{name}` must be class ids [n] (or one-hot [n, classes]); received shape "
            f"{labels.shape}."
        )
    else:
        check_labels(name, labels)
    return labels.astype(np.int64)


def check_unit_rows(name, x, axis=-1):
    """Raises ValueError if rows of `x` (when known now) are not L2-normalized within the
    rounding of a `dim`-term dot product, or of a bfloat16 normalization (mixed precision);
    returns x. Functions that assume unit vectors call it instead of silently computing
    with raw features (whose norms are far from 1)."""
    values = concrete(x)
    if values is None or not values.size:
        return x
    if str(values.dtype) == "bfloat16":
        eps = 2.0 ** -7
    elif values.dtype.kind == "f":
        # At least float32's: rows normalized in float32 (the heads) may be passed as float64.
        eps = max(float(np.finfo(values.dtype).eps), float(np.finfo(np.float32).eps))
    else:
        return x
    values = values.astype(np.float64)
    norms = np.sqrt(np.sum(np.square(values), axis=axis))
    bound = max(_UNIT_SAFETY * eps * max(values.shape[axis], 1), _UNIT_FLOOR)
    if np.max(np.abs(norms - 1.0)) > bound:
        raise ValueError(
            f"`{name}` must hold L2-normalized rows (norm 1 along its last axis); received "
            f"norms in [{norms.min():.6g}, {norms.max():.6g}]. Normalize first, e.g. "
            f"`keras.ops.normalize({name}, axis=-1)`."
        )
    return x
