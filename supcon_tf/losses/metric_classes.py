"""Keras `Loss` classes over the metric-learning losses, and their registry by name.

`loss(labels, embeddings)`: y_true = class ids [batch], y_pred = embeddings [batch, dim]
(for `ProxyAnchorLoss`, similarities to the class proxies [batch, num_classes]).
`METRIC_LOSSES` maps the names configs use ("triplet", "multi_similarity", "circle",
"proxy_anchor", "supcon") to the classes; `metric_loss(name, **kwargs)` builds one.
"""

import keras

from supcon_tf.losses import distances, metric, miners, parts, reducers
from supcon_tf.losses.classes import SupConLoss
from supcon_tf.inputs import check_label_dtype
from supcon_tf.registry import Registry, register
from supcon_tf.validation import check_int


_PARTS = {"distance": distances.get, "mining": lambda v: miners.get(v, "mining"),
          "miner": miners.get, "reducer": reducers.get}


class _MetricLoss(keras.losses.Loss):
    """Stores its options (`_options`), checks them, passes them to `_fn`, serializes them.

    Parts (distance, miner, reducer) are resolved to objects once (a seeded miner keeps
    its seed state); the config keeps a name as given, an object as its Keras dict.
    """

    _options = ()
    takes_memory = False

    def __init__(self, name, reduction="sum_over_batch_size", dtype=None, **options):
        self._check(**options)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self._parts = {k: _PARTS[k](v) for k, v in options.items()
                       if k in _PARTS and v is not None}
        for key, value in options.items():
            setattr(self, key, value if key not in self._parts or isinstance(value, str)
                    else self._parts[key])
        self._memory = None

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras' Loss casts y_true to the loss dtype: class ids are checked before.
        if y_true is None:
            raise ValueError(f"{type(self).__name__} needs labels (class ids [batch]); "
                             "received y_true=None.")
        y_true = keras.ops.convert_to_tensor(y_true)
        check_label_dtype(y_true.dtype, len(y_true.shape))
        return super().__call__(y_true, y_pred, sample_weight)

    def call_with_memory(self, y_true, y_pred, memory, sample_weight=None):
        """The loss with a cross-batch memory (embeddings, labels, valid) as references."""
        if not self.takes_memory:
            raise ValueError(f"A cross-batch memory needs a pair- or triplet-based loss "
                             f"(triplet, multi_similarity, circle); received "
                             f"{type(self).__name__}.")
        self._memory = memory
        try:
            return self(y_true, y_pred, sample_weight)
        finally:
            self._memory = None

    def call(self, y_true, y_pred):
        options = {k: self._parts.get(k, getattr(self, k)) for k in self._options}
        if self.takes_memory:
            options["memory"] = self._memory
        return type(self)._fn(y_pred, self._ids(y_true), **options)

    @staticmethod
    def _ids(y_true):
        return keras.ops.cast(y_true, "int32") if len(y_true.shape) == 1 else y_true

    def get_config(self):
        config = super().get_config()
        config.update({k: parts.serialize(getattr(self, k)) for k in self._options})
        return config


@register
class TripletLoss(_MetricLoss):
    """Triplet loss with a triplet miner, a distance and a reducer (see
    `metric.triplet_loss`: default batch-hard, cosine, per-anchor mean, Hermans et al.)."""

    _options = ("margin", "mining", "distance", "soft_margin", "average", "reducer")
    _fn = staticmethod(metric.triplet_loss)
    _check = staticmethod(lambda margin, mining, distance, soft_margin, average, reducer:
                          metric.check_triplet_options(margin, mining, distance, average,
                                                       reducer))
    takes_memory = True

    def __init__(self, margin=0.2, mining="batch_hard", distance="cosine", soft_margin=False,
                 average="pairs", reducer=None, reduction="sum_over_batch_size",
                 name="triplet_loss", dtype=None):
        super().__init__(name, reduction, dtype, margin=float(margin), mining=mining,
                         distance=distance, soft_margin=bool(soft_margin), average=average,
                         reducer=reducer)


@register
class MultiSimilarityLoss(_MetricLoss):
    """Multi-similarity loss (see `metric.multi_similarity_loss`: default its own pair
    miner, cosine, mean over the anchors, Wang et al. 2019)."""

    _options = ("alpha", "beta", "base", "epsilon", "distance", "miner", "reducer")
    _fn = staticmethod(metric.multi_similarity_loss)
    _check = staticmethod(metric.check_multi_similarity_options)
    takes_memory = True

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, epsilon=0.1, distance="cosine",
                 miner=None, reducer=None, reduction="sum_over_batch_size",
                 name="multi_similarity_loss", dtype=None):
        super().__init__(name, reduction, dtype, alpha=float(alpha), beta=float(beta),
                         base=float(base), epsilon=float(epsilon), distance=distance,
                         miner=miner, reducer=reducer)


@register
class CircleLoss(_MetricLoss):
    """Circle loss in its pair-wise form (see `metric.circle_loss`: default all pairs,
    cosine, mean over the anchors, Sun et al. 2020)."""

    _options = ("gamma", "margin", "distance", "miner", "reducer")
    _fn = staticmethod(metric.circle_loss)
    _check = staticmethod(metric.check_circle_options)
    takes_memory = True

    def __init__(self, gamma=80.0, margin=0.4, distance="cosine", miner=None, reducer=None,
                 reduction="sum_over_batch_size", name="circle_loss", dtype=None):
        super().__init__(name, reduction, dtype, gamma=float(gamma), margin=float(margin),
                         distance=distance, miner=miner, reducer=reducer)


@register
class ProxyAnchorLoss(_MetricLoss):
    """Proxy-anchor loss (see `metric.proxy_anchor_loss`); y_pred = proxy similarities.

    A Keras `Loss` holds no weights, so the proxies live in a `supcon_tf.heads.Proxies`
    layer that the method owns (`MetricLearning` builds it from `proxy_layer()`, makes
    it output `y_pred["proxy_similarity"]`, and trains it at `lr_multiplier` times the
    optimizer's learning rate; the paper uses 100).
    """

    _options = ("num_classes", "alpha", "delta", "lr_multiplier")
    _check = staticmethod(lambda num_classes, alpha, delta, lr_multiplier: (
        check_int("num_classes", num_classes, 1),
        metric.check_positive("lr_multiplier", lr_multiplier),
        metric.check_proxy_anchor_options(alpha, delta)))

    def __init__(self, num_classes, alpha=32.0, delta=0.1, lr_multiplier=100.0,
                 reduction="sum_over_batch_size", name="proxy_anchor_loss", dtype=None):
        super().__init__(name, reduction, dtype, num_classes=int(num_classes),
                         alpha=float(alpha), delta=float(delta),
                         lr_multiplier=float(lr_multiplier))

    def call(self, y_true, y_pred):
        loss = metric.proxy_anchor_loss(y_pred, self._ids(y_true), alpha=self.alpha,
                                        delta=self.delta)
        # Shape [1], not []: Keras leaves a scalar unreduced, without the 1 / replicas
        # scaling that makes the summed per-replica gradients the global one.
        return keras.ops.reshape(loss, (1,))

    def proxy_layer(self):
        """A fresh `Proxies` layer for this loss's classes and learning-rate multiplier."""
        from supcon_tf.heads.proxies import Proxies

        return Proxies(self.num_classes, lr_multiplier=self.lr_multiplier)


METRIC_LOSSES = Registry("metric loss")
METRIC_LOSSES.register("triplet")(TripletLoss)
METRIC_LOSSES.register("multi_similarity")(MultiSimilarityLoss)
METRIC_LOSSES.register("circle")(CircleLoss)
METRIC_LOSSES.register("proxy_anchor")(ProxyAnchorLoss)
METRIC_LOSSES.register("supcon")(SupConLoss)
DEFAULT_METRIC_LOSS = "multi_similarity"


def metric_loss(name=DEFAULT_METRIC_LOSS, **kwargs):
    """The registered metric loss `name` built with `kwargs`."""
    return METRIC_LOSSES.get(name, **kwargs)
