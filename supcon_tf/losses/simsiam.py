"""SimSiam's loss (Chen & He, CVPR 2021): symmetrized negative cosine with stop-gradient.

For two views, L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2 with D(p, z) = -cos(p, z),
p = predictor(z) and sg the stop-gradient (the paper's Algorithm 1). With more
views (multi-crop) every ordered pair (i, j != i) counts once and the pairs are
averaged, which is the paper's formula for two views.
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.losses.byol import PredictionTargetLoss, check_prediction_pair
from supcon_tf.registry import register


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """x / max(|x|, epsilon) with a finite gradient at x = 0.

    `keras.ops.normalize` takes rsqrt of the squared norm before clamping, so a zero
    vector (a bottleneck predictor whose ReLUs are all off for a sample outputs its
    bias, 0 at initialization) gets a NaN gradient; clamping first avoids it.
    """
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon * epsilon))


def simsiam_loss(predictions, targets):
    """Per-sample loss [batch] from predictions p and targets z [batch, views, dim]
    (the predictive losses' order, as `byol_loss`). No gradient flows into `targets`
    (the projections); it flows into `predictions`.
    """
    predictions, targets = check_prediction_pair(predictions, targets)
    z = l2_normalize(ops.stop_gradient(ops.cast(targets, "float32")))
    p = l2_normalize(ops.cast(predictions, "float32"))
    num_views = z.shape[1]
    cosine = ops.einsum("bid,bjd->bij", p, z)  # [batch, prediction i, target j]
    off_diagonal = 1.0 - ops.eye(num_views, dtype="float32")
    return -ops.sum(cosine * off_diagonal, axis=(1, 2)) / (num_views * (num_views - 1))


def collapse_std(outputs):
    """SimSiam's collapse indicator: the per-dimension std over the global batch of the
    L2-normalized outputs [batch(, views), dim], averaged over dimensions.

    About 1/sqrt(dim) for well-spread outputs, 0 when they collapse to one vector.
    """
    z = ops.cast(outputs, "float32")
    z = l2_normalize(ops.reshape(z, (-1, z.shape[-1])))
    z, _ = distribute.cross_replica_concat(ops.stop_gradient(z))
    return ops.mean(ops.std(z, axis=0))


@register
class SimSiamLoss(PredictionTargetLoss):
    """SimSiam's negative cosine as a Keras loss (see `PredictionTargetLoss`)."""

    loss_fn = staticmethod(simsiam_loss)

    def __init__(self, reduction="sum_over_batch_size", name="simsiam_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
