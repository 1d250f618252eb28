"""Reducers, as pytorch-metric-learning's `reducers`: how a loss's terms become one number.

A loss hands its reducer `terms` [anchors, T] (one per mined triplet or pair, or one
per anchor for the per-anchor losses), a `mask` [anchors, T] of the terms that exist,
and the anchors' class ids. The reducer returns per-anchor values [anchors] whose mean
over the global batch is the reduced loss, so Keras' mean over the batch (and its
1 / replicas scaling under `tf.distribute`) gives the reduction on any replica split:
counts are summed over replicas with `distribute.cross_replica_concat`.

* "mean" (`MeanReducer`): sum of the terms / number of terms;
* "non_zero" (`NonZeroReducer`, pytorch-metric-learning's `AvgNonZeroReducer`): sum /
  number of terms > 0;
* "per_anchor" (`PerAnchorReducer`): each anchor's mean over its own terms (0 without
  any), then the mean over all anchors;
* `DivisorReducer(divisor)` ("divisor"): sum / a fixed divisor;
* `ClassWeightedReducer(weights)` ("class_weighted"): terms weighted by the anchor's
  class weight, then "mean".
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.losses.parts import Part, resolve
from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive


def _global_mean_of(row_sums, counts):
    """Per-anchor values with global mean sum(row_sums) / sum(counts), all replicas."""
    all_counts = distribute.cross_replica_concat(counts)[0]
    anchors = ops.cast(ops.shape(all_counts)[0], row_sums.dtype)
    return ops.divide_no_nan(row_sums * anchors, ops.sum(all_counts))


class Reducer(Part):
    """Base: `__call__(terms, mask, labels)` -> per-anchor values [anchors]."""

    def __call__(self, terms, mask, labels):
        mask = ops.cast(mask, terms.dtype)
        return self.call(terms * mask, mask, labels)


@register
class MeanReducer(Reducer):
    """The mean over every term that exists (zeros included)."""

    def call(self, terms, mask, labels):
        return _global_mean_of(ops.sum(terms, axis=1), ops.sum(mask, axis=1))


@register
class NonZeroReducer(Reducer):
    """The mean over the terms > 0 (pytorch-metric-learning's `AvgNonZeroReducer`)."""

    def call(self, terms, mask, labels):
        positive = mask * ops.cast(ops.greater(terms, 0.0), terms.dtype)
        return _global_mean_of(ops.sum(terms, axis=1), ops.sum(positive, axis=1))


@register
class PerAnchorReducer(Reducer):
    """Each anchor's mean over its terms (0 without any), averaged over all anchors."""

    def call(self, terms, mask, labels):
        return ops.divide_no_nan(ops.sum(terms, axis=1), ops.sum(mask, axis=1))


@register
class DivisorReducer(Reducer):
    """The sum of the terms divided by a fixed `divisor`."""

    def __init__(self, divisor=1.0):
        self.divisor = float(check_positive("divisor", divisor))

    def call(self, terms, mask, labels):
        anchors = distribute.cross_replica_concat(ops.sum(mask, axis=1))[0]
        scale = ops.cast(ops.shape(anchors)[0], terms.dtype) / self.divisor
        return ops.sum(terms, axis=1) * scale

    def get_config(self):
        return {"divisor": self.divisor}


@register
class ClassWeightedReducer(Reducer):
    """Each term times the weight of its anchor's class (`weights[class id]`), then the
    mean over the terms."""

    def __init__(self, weights):
        self.weights = [check_number(f"weights[{i}]", w) for i, w in enumerate(weights)]
        if not self.weights:
            raise ValueError("`weights` must hold one weight per class; received weights=[].")

    def call(self, terms, mask, labels):
        table = ops.convert_to_tensor(self.weights, dtype=terms.dtype)
        weight = ops.take(table, ops.cast(labels, "int32"), axis=0)
        return _global_mean_of(ops.sum(terms, axis=1) * weight, ops.sum(mask, axis=1))

    def get_config(self):
        return {"weights": list(self.weights)}


_NAMED = {
    "mean": MeanReducer,
    "non_zero": NonZeroReducer,
    "per_anchor": PerAnchorReducer,
    "divisor": DivisorReducer,
    "class_weighted": ClassWeightedReducer,
}
REDUCERS = tuple(_NAMED)


def get(reducer, name="reducer"):
    """A `Reducer` from an object, a config dict or serialization, or a name of `REDUCERS`."""
    return resolve(reducer, Reducer, _NAMED, name)
