"""Contrastive losses against a queue of keys: MoCo's InfoNCE and SupCon over batch + queue.

`moco_loss` is Algorithm 1 of MoCo (He et al., CVPR 2020; MoCo v2 settings in Chen
et al. 2020): for query q, its positive key k+ and the queued keys k_j,
    L_q = -log exp(q.k+ / T) / (exp(q.k+ / T) + sum_j exp(q.k_j / T)).
`queue_supcon_loss` is the supervised contrastive loss L^sup_out (Khosla et al.
2020, Eq. 2) with the queries as anchors and the keys of the global batch plus the
queue as contrasts; keys of the anchor's class (its own key included) are positives.
Both take L2-normalized inputs (they do not normalize: rows whose norm is not 1 are
refused where values are known now, so raw features never give a silently different
loss) and return per-sample losses [batch]; queue rows where `queue_mask` is 0 (never
written) are left out of every sum and of every check.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import (check_finite, check_labels, check_rank, check_same_size,
                              check_unit_rows, concrete)
from supcon_tf.losses.contrastive import masked_logsumexp, positive_pair_mask
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


def _dtype(x):
    return "float64" if x.dtype == "float64" else "float32"


def _queue_mask(queue, queue_mask, dtype):
    if queue_mask is None:
        return ops.ones((ops.shape(queue)[0],), dtype)
    return ops.cast(queue_mask, dtype)


def _check_inputs(query, key, queue, queue_mask):
    """Ranks, matching shapes, finite values and unit rows of the queue losses' inputs."""
    query, key, queue = (ops.convert_to_tensor(t) for t in (query, key, queue))
    check_rank("query", query, 2, "[batch, dim]")
    check_rank("key", key, 2, "[batch, dim]")
    check_rank("queue", queue, 2, "[queue_size, dim]")
    check_same_size("key", key, "query", query)
    check_same_size("key", key, "query", query, axis=1, what="feature size")
    check_same_size("queue", queue, "query", query, axis=1, what="feature size")
    if queue_mask is not None:
        queue_mask = ops.convert_to_tensor(queue_mask)
        check_rank("queue_mask", queue_mask, 1, "[queue_size]")
        check_same_size("queue_mask", queue_mask, "queue", queue, what="length")
    for name, value in (("query", query), ("key", key), ("queue", queue)):
        check_finite(name, value)
    check_unit_rows("query", query)
    check_unit_rows("key", key)
    rows, written = concrete(queue), concrete(queue_mask)
    if rows is not None:
        check_unit_rows("queue", rows if written is None else rows[written.astype(bool)])
    return query, key, queue, queue_mask


def moco_loss(query, key, queue, queue_mask=None, *, temperature=0.2):
    """MoCo's InfoNCE per query, [batch]: query/key [batch, dim], queue [size, dim]."""
    check_positive("temperature", float(temperature))
    query, key, queue, queue_mask = _check_inputs(query, key, queue, queue_mask)
    dtype = _dtype(query)
    query, key, queue = (ops.cast(t, dtype) for t in (query, key, queue))
    positive = ops.sum(query * ops.stop_gradient(key), axis=-1, keepdims=True)
    negatives = ops.matmul(query, ops.transpose(ops.stop_gradient(queue)))
    logits = ops.concatenate([positive, negatives], axis=1) / float(temperature)
    mask = _queue_mask(queue, queue_mask, dtype)
    mask = ops.concatenate([ops.ones((1,), dtype), mask])[None, :] * ops.ones_like(logits)
    log_denominator, _ = masked_logsumexp(logits, mask)
    return log_denominator - logits[:, 0]


def queue_supcon_loss(query, key, labels, queue, queue_labels, queue_mask=None, *,
                      temperature=0.1, scale_by_temperature=True):
    """SupCon over [global batch keys, queue] per local query, [batch].

    Args:
      query: [batch, dim] anchors (online, gradient flows); key: [batch, dim] their
        keys (teacher); labels: [batch] class ids; queue / queue_labels /
        queue_mask: the queued keys [size, dim], their class ids [size] and which
        rows hold an entry.
    Under a `tf.distribute` strategy the keys and labels of every replica are
    contrasts (`distribute.cross_replica_concat`).
    """
    check_positive("temperature", float(temperature))
    if labels is None or len(labels.shape) != 1:
        raise ValueError("`labels` must be class ids of shape [batch] for the labelled-"
                         f"queue SupCon loss; received {None if labels is None else tuple(labels.shape)}.")
    query, key, queue, queue_mask = _check_inputs(query, key, queue, queue_mask)
    check_same_size("labels", labels, "query", query)
    check_labels("labels", labels)
    queue_labels = ops.convert_to_tensor(queue_labels)
    check_same_size("queue_labels", queue_labels, "queue", queue, what="length")
    dtype = _dtype(query)
    query, key, queue = (ops.cast(t, dtype) for t in (query, key, queue))
    keys, offset = distribute.cross_replica_concat(ops.stop_gradient(key))
    key_labels = distribute.cross_replica_concat(labels)[0]
    local, global_batch = ops.shape(query)[0], ops.shape(keys)[0]
    diagonal = ops.one_hot(ops.arange(local) + offset, global_batch, dtype=dtype)
    batch_positives = positive_pair_mask(labels, key_labels, diagonal)
    queue_valid = _queue_mask(queue, queue_mask, dtype)
    queue_labels = ops.cast(queue_labels, labels.dtype)
    no_self = ops.zeros((local, ops.shape(queue)[0]), dtype)
    queue_positives = positive_pair_mask(labels, queue_labels, no_self) * queue_valid[None]
    positives = ops.concatenate([batch_positives, queue_positives], axis=1)
    valid = ops.concatenate([ops.ones_like(batch_positives),
                             ops.ones_like(queue_positives) * queue_valid[None]], axis=1)
    contrast = ops.concatenate([keys, ops.stop_gradient(queue)], axis=0)
    logits = ops.matmul(query, ops.transpose(contrast)) / float(temperature)
    log_denominator, _ = masked_logsumexp(logits, valid)
    log_prob = ops.sum(positives * (logits - log_denominator[:, None]), axis=1)
    loss = -log_prob / ops.sum(positives, axis=1)  # Its own key: always >= 1 positive.
    return loss * float(temperature) if scale_by_temperature else loss


class _QueueLoss(keras.losses.Loss):
    """`loss(labels_or_None, {"query", "key", "queue", "queue_mask", ...})`."""

    def __init__(self, temperature, reduction, name, dtype):
        check_positive("temperature", float(temperature))
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.temperature = float(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:  # Keras' Loss rejects None; [batch, 0] stands for "no labels".
            y_true = ops.zeros((ops.shape(y_pred["query"])[0], 0), "float32")
        return super().__call__(y_true, y_pred, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config


@register
class MoCoLoss(_QueueLoss):
    """MoCo's InfoNCE over [positive key, queue] (temperature 0.2: MoCo v2)."""

    def __init__(self, temperature=0.2, reduction="sum_over_batch_size", name="moco_loss",
                 dtype=None):
        super().__init__(temperature, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return moco_loss(y_pred["query"], y_pred["key"], y_pred["queue"],
                         y_pred.get("queue_mask"), temperature=self.temperature)


@register
class QueueSupConLoss(_QueueLoss):
    """SupCon with a labelled queue: keys of the anchor's class are positives."""

    def __init__(self, temperature=0.1, scale_by_temperature=True,
                 reduction="sum_over_batch_size", name="queue_supcon_loss", dtype=None):
        super().__init__(temperature, reduction, name, dtype)
        self.scale_by_temperature = bool(scale_by_temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:
            raise ValueError("`labels` are required by the labelled-queue SupCon loss "
                             "(method 'supcon_moco'): batches must be (views, labels); "
                             "received labels=None.")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        return queue_supcon_loss(y_pred["query"], y_pred["key"], labels, y_pred["queue"],
                                 y_pred["queue_labels"], y_pred.get("queue_mask"),
                                 temperature=self.temperature,
                                 scale_by_temperature=self.scale_by_temperature)

    def get_config(self):
        config = super().get_config()
        config.update(scale_by_temperature=self.scale_by_temperature)
        return config
