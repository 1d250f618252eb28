"""SwAV's loss (Caron et al., NeurIPS 2020): Sinkhorn-Knopp codes and swapped prediction.

The codes q of a view come from its prototype scores by the Sinkhorn-Knopp
algorithm (the paper's Sec. 3.1 and its official `distributed_sinkhorn`): Q = exp(
scores / epsilon), then `iterations` alternating normalizations so that every
prototype gets an equal share of the GLOBAL batch (its sums run over all replicas:
the scores are gathered with `distribute.cross_replica_concat`) and every sample's
code sums to 1. Each of the first `assign_views` views (the global crops) predicts
nothing of itself: its code is the target of the softmax(scores / temperature) of
every other view (all crops), by cross-entropy.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


def _check_count(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {name}={value!r}.")
    return value


def check_options(temperature, epsilon, iterations, assign_views):
    check_positive("temperature", temperature)
    check_positive("epsilon", epsilon)
    _check_count("sinkhorn_iterations", iterations)
    _check_count("assign_views", assign_views)


def sinkhorn_knopp(scores, epsilon=0.05, iterations=3, queue_scores=None, queue_mask=None):
    """Codes [batch, K] of the local `scores` [batch, K] (no gradient), computed on the
    global batch of B samples: each sample's code sums to 1 and, as the iterations
    converge, each prototype's column to B / K (equipartition).

    `queue_scores` [Q, K] (SwAV's queue for small batches: scores of stored features,
    the same on every replica, so counted once) join the global batch as extra
    samples; `queue_mask` [Q] (bool or 0/1) leaves out the rows not written yet.
    """
    check_positive("epsilon", epsilon)
    _check_count("sinkhorn_iterations", iterations)
    if len(scores.shape) != 2:
        raise ValueError(f"`scores` must have shape [batch, num_prototypes]; received shape "
                         f"{tuple(scores.shape)}.")
    check_finite("scores", scores)
    local = ops.stop_gradient(ops.cast(scores, "float32"))
    scores_all, offset = distribute.cross_replica_concat(local)
    counted, first = None, 0
    if queue_scores is not None:
        check_finite("queue_scores", queue_scores)
        queue_scores = ops.stop_gradient(ops.cast(queue_scores, "float32"))
        first = queue_scores.shape[0]
        written = (ops.ones((first,), "bool") if queue_mask is None
                   else ops.cast(queue_mask, "bool"))
        counted = ops.concatenate([written, ops.ones((ops.shape(scores_all)[0],), "bool")])
        counted = counted[:, None]
        scores_all = ops.concatenate([queue_scores, scores_all], axis=0)
        # Rows left out (not written yet) take no part, in the shift below included.
        scores_all = ops.where(counted, scores_all, float("-inf"))
    # exp((s - max_p) / eps) with the maximum of each prototype's column over the rows
    # that count: exact (Sinkhorn-Knopp is invariant to scaling a column, and the first
    # normalization below divides each column by its sum), and no column can underflow
    # to all zeros (its maximum gives exp(0) = 1), as a global maximum lets a prototype
    # far from every sample do at a small epsilon (all-NaN codes).
    q = ops.exp((scores_all - ops.max(scores_all, axis=0, keepdims=True)) / epsilon)
    if counted is None:
        batch = ops.cast(ops.shape(q)[0], "float32")
    else:
        batch = ops.sum(ops.cast(counted, "float32"))
    prototypes = ops.cast(ops.shape(q)[-1], "float32")  # static shape lost across workers
    q = q / ops.sum(q)
    for _ in range(iterations):
        q = q / ops.sum(q, axis=0, keepdims=True) / prototypes  # Prototype shares: 1/K.
        rows = ops.sum(q, axis=1, keepdims=True)  # Sample masses: 1/B (masked rows: 0).
        q = q / ops.maximum(rows, 1e-30) / batch
    q = q * batch
    rows = ops.arange(ops.shape(local)[0]) + offset + first
    return ops.stop_gradient(ops.take(q, rows, axis=0))


def swav_loss(scores, temperature=0.1, epsilon=0.05, iterations=3, assign_views=2,
              queue_scores=None, queue_mask=None):
    """Per-sample swapped-prediction loss [batch] from prototype scores [batch, views, K]
    (cosines of L2-normalized projections and prototypes), views in crop order.

    `queue_scores` [assign_views, Q, K] and `queue_mask` [Q] add a queue of earlier
    features of each global crop to its Sinkhorn-Knopp (see `sinkhorn_knopp`).
    """
    check_options(temperature, epsilon, iterations, assign_views)
    if len(scores.shape) != 3:
        raise ValueError(f"`scores` must have shape [batch, num_views, num_prototypes]; "
                         f"received shape {tuple(scores.shape)}.")
    num_views = scores.shape[1]
    if num_views is None or num_views < 2 or assign_views > num_views:
        raise ValueError(
            f"`scores` must hold at least 2 views and `assign_views` ({assign_views}) at most "
            f"as many as it holds; received shape {tuple(scores.shape)}.")
    check_finite("scores", scores)
    scores = ops.cast(scores, "float32")
    log_p = ops.log_softmax(scores / temperature, axis=-1)  # [batch, views, K]
    total = 0.0
    for i in range(assign_views):
        queued = None if queue_scores is None else queue_scores[i]
        q = sinkhorn_knopp(scores[:, i], epsilon, iterations, queued, queue_mask)
        others = [v for v in range(num_views) if v != i]
        cross = -ops.sum(q[:, None, :] * ops.take(log_p, others, axis=1), axis=-1)
        total = total + ops.mean(cross, axis=1)
    return total / assign_views


@register
class SwAVLoss(keras.losses.Loss):
    """`loss(labels_or_None, scores)`: `swav_loss` as a serializable Keras loss.

    `y_pred` is the scores [batch, views, K], or a dict of `scores`, `queue_scores`
    and `queue_mask` (the arguments of `swav_loss`) with a queue.

    Defaults are the paper's: temperature 0.1, Sinkhorn epsilon 0.05, 3 iterations,
    codes from the 2 global crops.
    """

    def __init__(self, temperature=0.1, epsilon=0.05, sinkhorn_iterations=3, assign_views=2,
                 reduction="sum_over_batch_size", name="swav_loss", dtype=None):
        check_options(temperature, epsilon, sinkhorn_iterations, assign_views)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.assign_views = int(assign_views)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Labels are unused; Keras' Loss rejects y_true=None.
        scores = y_pred["scores"] if isinstance(y_pred, dict) else y_pred
        return super().__call__(ops.zeros((ops.shape(scores)[0], 0)), y_pred, sample_weight)

    def call(self, y_true, y_pred):
        del y_true
        inputs = dict(y_pred) if isinstance(y_pred, dict) else dict(scores=y_pred)
        return swav_loss(inputs.pop("scores"), self.temperature, self.epsilon,
                         self.sinkhorn_iterations, self.assign_views, **inputs)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature, epsilon=self.epsilon,
                      sinkhorn_iterations=self.sinkhorn_iterations,
                      assign_views=self.assign_views)
        return config
