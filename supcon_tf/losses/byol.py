"""BYOL's loss (Grill et al., NeurIPS 2020, Eq. 2): normalized MSE, symmetrized.

For an online prediction q of one view and the target projection z' of another,
    l(q, z') = || q/||q|| - z'/||z'|| ||^2 = 2 - 2 cos(q, z'),
and the loss of a sample is the sum over the ordered pairs of different views
(for two views, L + L~ of the paper), divided by num_views - 1.
"""

import keras
from keras import ops

from supcon_tf.inputs import check_finite
from supcon_tf.registry import register


def check_prediction_pair(predictions, targets):
    """The predictive family's inputs (BYOL, SimSiam): predictions and targets of the same
    shape [batch, num_views >= 2, dim], finite; returns both as tensors."""
    predictions, targets = ops.convert_to_tensor(predictions), ops.convert_to_tensor(targets)
    if len(predictions.shape) != 3 or predictions.shape[1] is None or predictions.shape[1] < 2:
        raise ValueError("`predictions` must have shape [batch, num_views >= 2, dim]; "
                         f"received shape {tuple(predictions.shape)}.")
    if tuple(targets.shape[1:]) != tuple(predictions.shape[1:]):
        raise ValueError(f"`targets` must match the predictions' shape "
                         f"{tuple(predictions.shape)}; received {tuple(targets.shape)}.")
    return check_finite("predictions", predictions), check_finite("targets", targets)


def byol_loss(predictions, targets):
    """Per-sample loss [batch]; predictions and targets [batch, num_views, dim].

    The targets get no gradient (the target network is not trained by the loss). The
    predictive losses take (predictions, targets) in this order (`simsiam_loss` too).
    """
    predictions, targets = check_prediction_pair(predictions, targets)
    dtype = "float64" if predictions.dtype == "float64" else "float32"
    p = ops.normalize(ops.cast(predictions, dtype), axis=-1)
    z = ops.normalize(ops.stop_gradient(ops.cast(targets, dtype)), axis=-1)
    cos = ops.einsum("bvd,bwd->bvw", p, z)  # [batch, prediction view, target view]
    num_views = predictions.shape[1]
    off_diagonal = 1.0 - ops.eye(num_views, dtype=dtype)
    total = ops.sum((2.0 - 2.0 * cos) * off_diagonal, axis=(1, 2))
    return total / (num_views - 1)


class PredictionTargetLoss(keras.losses.Loss):
    """`loss(labels_or_None, {"prediction": [b, V, d], "target": [b, V, d]})`: the Keras form
    of a predictive loss (labels unused), one calling convention for BYOL and SimSiam."""

    loss_fn = None  # The per-sample function of (predictions, targets).
    keys = ("prediction", "target")  # What `y_pred` must hold.

    def __call__(self, y_true, y_pred, sample_weight=None):
        if not isinstance(y_pred, dict) or not set(self.keys) <= set(y_pred):
            names = [repr(k) for k in self.keys]
            raise ValueError(f"`y_pred` of {type(self).__name__} must be a dict with keys "
                             f"{', '.join(names[:-1])} and {names[-1]}; received "
                             f"{sorted(y_pred) if isinstance(y_pred, dict) else type(y_pred)}.")
        if y_true is None:  # Labels are unused; Keras' Loss rejects None.
            y_true = ops.zeros((ops.shape(y_pred["prediction"])[0], 0), "float32")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        return type(self).loss_fn(y_pred["prediction"], y_pred["target"])


@register
class BYOLLoss(PredictionTargetLoss):
    """BYOL's normalized MSE as a Keras loss (see `PredictionTargetLoss`)."""

    loss_fn = staticmethod(byol_loss)

    def __init__(self, reduction="sum_over_batch_size", name="byol_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
