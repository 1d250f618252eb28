"""NNCLR's loss (Dwibedi et al., ICCV 2021, Eq. 1 and Algorithm 1): nearest-neighbour
positives from a support set, InfoNCE against the predictions of the global batch.

For sample i with projections z1_i, z2_i and predictions p1_i, p2_i, and a support
set Q of L2-normalized projections, NN(z) = argmax_{q in Q} cos(z, q) and
    L_i = -log exp(NN(z1_i) . p2_i / T) / sum_k exp(NN(z1_i) . p2_k / T)
with NN and p L2-normalized and k over the **global** batch (the paper's pseudocode
`logits = nn @ p.T` on one device; solo-learn gathers p across devices the same way):
the negatives of an anchor NN(z1_i) are the other samples' predictions p2_k. The loss
is symmetric, (L(NN1, p2) + L(NN2, p1)) / 2; with V > 2 views, the mean over the
ordered pairs of different views. The NN takes no gradient (a support-set row, a
stop-gradient in the paper); rows of Q never written are skipped, and while none is
written the NN of z is z itself (the loss is then SimCLR's with a predictor).
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_rank, check_same_size
from supcon_tf.losses.byol import PredictionTargetLoss, check_prediction_pair
from supcon_tf.losses.contrastive import masked_logsumexp
from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive


def nearest_neighbours(features, support, support_mask=None):
    """[n, dim]: the support row of highest cosine with each row of `features` [n, dim].

    `support` [size, dim] holds L2-normalized rows; `support_mask` [size] (bool or 0/1)
    marks the rows to search. While no row is marked the result is `features`
    normalized. No gradient reaches the result.
    """
    z = ops.normalize(features, axis=-1)
    support = ops.cast(ops.stop_gradient(support), z.dtype)
    similarity = ops.matmul(z, ops.transpose(support))
    if support_mask is not None:
        written = ops.cast(support_mask, "bool")
        similarity = ops.where(written[None, :], similarity, float("-inf"))
    neighbours = ops.take(support, ops.argmax(similarity, axis=1), axis=0)
    if support_mask is not None:
        neighbours = ops.where(ops.any(written), neighbours, z)
    return ops.stop_gradient(neighbours)


def _check_support(support, support_mask, projections):
    support = check_finite("support", ops.convert_to_tensor(support))
    check_rank("support", support, 2, "[support_size, dim]")
    check_same_size("support", support, "projections", projections, axis=-1,
                    what="feature size")
    if support_mask is not None:
        support_mask = ops.convert_to_tensor(support_mask)
        check_rank("support_mask", support_mask, 1, "[support_size]")
        check_same_size("support_mask", support_mask, "support", support, what="length")
    return support, support_mask


def nnclr_loss(projections, predictions, support, support_mask=None, *, temperature=0.1):
    """Per-sample NNCLR loss [batch].

    Args:
      projections: [batch, num_views >= 2, dim] z (any norm: normalized here).
      predictions: [batch, num_views, dim] p = predictor(z) (normalized here).
      support: [size, dim] L2-normalized support set (`FeatureQueue.values`).
      support_mask: [size] rows of `support` that hold an entry (`FeatureQueue.filled`).
      temperature: softmax temperature, > 0 (the paper's 0.1).
    Under a `tf.distribute` strategy the predictions of every replica are the
    candidates (`distribute.cross_replica_concat`, differentiable).
    """
    check_positive("temperature", check_number("temperature", temperature))
    predictions, projections = check_prediction_pair(predictions, projections)
    support, support_mask = _check_support(support, support_mask, projections)
    dtype = "float64" if predictions.dtype == "float64" else "float32"
    z, p = ops.cast(projections, dtype), ops.normalize(ops.cast(predictions, dtype), axis=-1)
    candidates, offset = distribute.cross_replica_concat(p)
    local, num_views = ops.shape(p)[0], p.shape[1]
    positive = ops.one_hot(ops.arange(local) + offset, ops.shape(candidates)[0], dtype=dtype)
    everyone = ops.ones_like(positive)
    total = 0.0
    for a in range(num_views):
        anchors = nearest_neighbours(z[:, a], support, support_mask)
        for b in range(num_views):
            if a == b:
                continue
            logits = ops.matmul(anchors, ops.transpose(candidates[:, b])) / float(temperature)
            log_denominator, _ = masked_logsumexp(logits, everyone)
            total = total + log_denominator - ops.sum(logits * positive, axis=1)
    return total / float(num_views * (num_views - 1))


@register
class NNCLRLoss(PredictionTargetLoss):
    """`loss(labels_or_None, {"projection", "prediction", "support"[, "support_mask"]})`:
    `nnclr_loss` as a Keras loss (labels unused)."""

    keys = ("projection", "prediction", "support")

    def __init__(self, temperature=0.1, reduction="sum_over_batch_size", name="nnclr_loss",
                 dtype=None):
        check_positive("temperature", check_number("temperature", temperature))
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        return nnclr_loss(y_pred["projection"], y_pred["prediction"], y_pred["support"],
                          y_pred.get("support_mask"), temperature=self.temperature)

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature)
        return config
