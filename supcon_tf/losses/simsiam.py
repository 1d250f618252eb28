"""SimSiam's loss (Chen & He, CVPR 2021): symmetrized negative cosine with stop-gradient.

For two views, L = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2 with D(p, z) = -cos(p, z),
p = predictor(z) and sg the stop-gradient (the paper's Algorithm 1). With more
views (multi-crop) every ordered pair (i, j != i) counts once and the pairs are
averaged, which is the paper's formula for two views.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.registry import register


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """x / max(|x|, epsilon) with a finite gradient at x = 0.

    `keras.ops.normalize` takes rsqrt of the squared norm before clamping, so a zero
    vector (a bottleneck predictor whose ReLUs are all off for a sample outputs its
    bias, 0 at initialization) gets a NaN gradient; clamping first avoids it.
    """
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon * epsilon))


def _check_views(name, x):
    if len(x.shape) != 3 or x.shape[1] is None or x.shape[1] < 2:
        raise ValueError(f"`{name}` must have shape [batch, num_views >= 2, dim]; received "
                         f"shape {tuple(x.shape)}.")


def simsiam_loss(projections, predictions):
    """Per-sample loss [batch] from projections z and predictions p [batch, views, dim].

    No gradient flows into `projections` (the targets); it flows into `predictions`.
    """
    _check_views("projections", projections)
    _check_views("predictions", predictions)
    if tuple(projections.shape[1:]) != tuple(predictions.shape[1:]):
        raise ValueError(f"`projections` and `predictions` must have the same shape; received "
                         f"{tuple(projections.shape)} and {tuple(predictions.shape)}.")
    z = l2_normalize(ops.stop_gradient(ops.cast(projections, "float32")))
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
class SimSiamLoss(keras.losses.Loss):
    """`loss(projections, predictions)`: `simsiam_loss` as a serializable Keras loss."""

    def __init__(self, reduction="sum_over_batch_size", name="simsiam_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")

    def call(self, y_true, y_pred):
        return simsiam_loss(y_true, y_pred)
