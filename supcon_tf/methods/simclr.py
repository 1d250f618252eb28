"""SimCLR (Chen et al., ICML 2020): only a sample's own views are positives."""

from supcon_tf.losses import SimCLRLoss
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.registry import register


@register
class SimCLR(ContrastiveModel):
    """NT-Xent over at least two views; labels in the batch are ignored."""

    min_views = 2
    default_loss = SimCLRLoss
