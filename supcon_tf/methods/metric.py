"""Metric learning: backbone + projector trained end to end, the embedding is the product.

Contrastive pretraining keeps the backbone; metric learning keeps the embedding
(`head(encoder(x))`, the export's `project` signature) for retrieval, deduplication
or search. `MetricLearning` trains it with any metric loss of
`supcon_tf.losses.METRIC_LOSSES` (triplet, multi-similarity, circle, proxy-anchor) or
SupCon, from one view per sample or more (each view is then one more sample of its
class). Batches are `(views, class ids)`; class-balanced batches
(`supcon_tf.data.class_balanced`, P classes x K samples) give every anchor positives.

With a `ProxyAnchorLoss` the model owns the proxies: a `Proxies` layer built from the
loss, whose similarities to the embeddings are `y_pred["proxy_similarity"]`, trained
at the loss's `lr_multiplier` times the optimizer's learning rate.

Cross-batch memory (XBM, Wang et al., CVPR 2020) with `xbm_size > 0`: a
`FeatureQueue` of the last `xbm_size` embeddings (unit rows) and their class ids,
the global batch enqueued after each step's loss, serves as extra references for a
pair- or triplet-based loss (triplet, multi-similarity, circle) from step
`xbm_start_step` on (the paper's warm-up: early embeddings drift too fast to reuse).
"""

from keras import ops

from supcon_tf.losses import METRIC_LOSSES, MultiSimilarityLoss, SupConLoss
from supcon_tf.losses.metric_classes import DEFAULT_METRIC_LOSS
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.methods.queue import FeatureQueue
from supcon_tf.optimizers.multipliers import set_lr_multiplier
from supcon_tf.registry import register
from supcon_tf.validation import check_int


def _flat(x):
    """[batch, views, ...] -> [batch * views, ...], sample-major."""
    return ops.reshape(x, (-1,) + tuple(x.shape[2:]))


@register
class MetricLearning(ContrastiveModel):
    """Backbone + projector with a metric-learning loss on the projections."""

    min_views = 1
    default_loss = MultiSimilarityLoss
    requires_labels = True

    @classmethod
    def resolve_loss(cls, kwargs):
        """(loss class, its kwargs) from a config's `loss` dict: `name` picks the loss."""
        kwargs = dict(kwargs)
        return METRIC_LOSSES.lookup(kwargs.pop("name", DEFAULT_METRIC_LOSS)), kwargs

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None, xbm_size=0,
                 xbm_start_step=0, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        make_proxies = getattr(self.method_loss, "proxy_layer", None)
        self.proxies = make_proxies() if make_proxies is not None else None
        self.xbm_size = check_int("xbm_size", xbm_size, 0)
        self.xbm_start_step = check_int("xbm_start_step", xbm_start_step, 0)
        if self.xbm_size and not getattr(self.method_loss, "takes_memory", False):
            raise ValueError(
                "`xbm_size` (cross-batch memory) needs a pair- or triplet-based loss "
                f"(triplet, multi_similarity, circle); received xbm_size={xbm_size} with "
                f"{type(self.method_loss).__name__}. Set xbm_size=0 or change the loss.")
        self.memory = None

    def build(self, input_shape):
        super().build(input_shape)
        if self.xbm_size and self.memory is None:
            self.memory = FeatureQueue(self.xbm_size, self.head.output_dim, with_labels=True,
                                       name="xbm")
            # Training steps seen (the optimizer's counter is out of reach of JAX's
            # stateless loss), for `xbm_start_step`.
            self.xbm_step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                            trainable=False, name="xbm_step",
                                            aggregation="only_first_replica")
        if self.proxies is not None and not self.proxies.built:
            self.proxies.build((None, self.head.output_dim))
        self._set_proxy_learning_rate()

    def _set_proxy_learning_rate(self):
        if (self.proxies is not None and self.proxies.built
                and getattr(self, "optimizer", None) is not None):
            set_lr_multiplier(self.optimizer, self.proxies.trainable_weights,
                              self.proxies.lr_multiplier)

    def compile(self, optimizer="sgd", loss="auto", **kwargs):
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        self._set_proxy_learning_rate()

    def call(self, inputs, training=False):
        outputs = super().call(inputs, training=training)
        if self.proxies is not None and isinstance(outputs, dict):
            projection = outputs["projection"]
            similarity = self.proxies(_flat(projection))
            outputs["proxy_similarity"] = ops.reshape(
                similarity, (-1, projection.shape[1], self.proxies.num_classes))
        return outputs

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        if isinstance(self.method_loss, SupConLoss):  # SupCon takes the views as they are.
            return super().compute_method_loss(y, y_pred, sample_weight)
        key = "projection" if self.proxies is None else "proxy_similarity"
        num_views = y_pred[key].shape[1]
        if y is not None and len(y.shape) == 2 and y.shape[1] == 1:
            y = y[:, 0]
        repeat = (lambda v: v) if num_views == 1 else (
            lambda v: ops.repeat(v, num_views, axis=0))
        y = None if y is None else repeat(y)
        if sample_weight is not None:
            sample_weight = repeat(sample_weight)
        if self.memory is None:
            return self.method_loss(y, _flat(y_pred[key]), sample_weight)
        return self.method_loss.call_with_memory(y, _flat(y_pred[key]), self._memory_rows(),
                                                 sample_weight)

    def _memory_rows(self):
        """(embeddings, labels, valid) of the memory; none valid before `xbm_start_step`."""
        started = ops.greater_equal(self.xbm_step.value, self.xbm_start_step)
        return (self.memory.values, self.memory.labels,
                ops.logical_and(self.memory.filled, started))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training and self.memory is not None:  # After the loss has read the memory.
            projection = y_pred["projection"]
            labels = ops.reshape(ops.cast(y, "int32"), (-1,))
            if projection.shape[1] > 1:
                labels = ops.repeat(labels, projection.shape[1], axis=0)
            self.memory.enqueue(_flat(projection), labels)
            self.xbm_step.assign(self.xbm_step.value + 1)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(xbm_size=self.xbm_size, xbm_start_step=self.xbm_start_step)
        return config
