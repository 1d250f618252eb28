"""Supervised contrastive learning (Khosla et al., NeurIPS 2020)."""

from supcon_tf.losses import SupConLoss
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.registry import register


@register
class SupCon(ContrastiveModel):
    """Samples of the same class are positives; batches are `(views, labels)`."""

    min_views = 1
    default_loss = SupConLoss
    requires_labels = True
