"""BYOL (Grill et al., NeurIPS 2020): bootstrap your own latent.

Online encoder + projector + predictor; the target encoder + projector are the EMA
of the online ones (tau raised from 0.996 to 1 by a cosine over the training steps,
the paper's Eq. in Sec. 3.2), updated at the start of each step (see
`supcon_tf.methods.teacher`). The loss is the symmetrized normalized MSE between
each view's prediction and the other view's target projection
(`supcon_tf.losses.byol`); no gradient reaches the target. Labels are unused.
"""

from supcon_tf.losses.byol import BYOLLoss
from supcon_tf.methods.momentum import MomentumModel
from supcon_tf.registry import register


@register
class BYOL(MomentumModel):
    """BYOL. The head is the projector (give it `normalize=False`, as in the paper: the
    loss normalizes); the predictor is a `ProjectionHead(predictor_hidden_dims,
    projection dim, normalize=False)` (paper: 4096 hidden, 256 out)."""

    min_views = 2
    default_loss = BYOLLoss

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 momentum=0.996, momentum_schedule="cosine", total_steps=None,
                 predictor_hidden_dims=(4096,), predictor_batch_norm=True, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         momentum=momentum, momentum_schedule=momentum_schedule,
                         total_steps=total_steps,
                         predictor_hidden_dims=predictor_hidden_dims,
                         predictor_batch_norm=predictor_batch_norm, **kwargs)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        inputs = dict(prediction=y_pred["prediction"], target=y_pred["target"])
        return self.method_loss(y, inputs, sample_weight)
