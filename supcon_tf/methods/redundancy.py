"""Barlow Twins (Zbontar et al., ICML 2021) and VICReg (Bardes et al., ICLR 2022): two
views, one network, no negatives, no predictor or teacher; the loss decorrelates the
embedding's dimensions over the global batch (`supcon_tf.losses.redundancy`)."""

from supcon_tf.heads import ProjectionHead
from supcon_tf.losses.redundancy import BarlowTwinsLoss, VICRegLoss
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.registry import register


def papers_projector():
    """Both papers' 3-layer projector (VICReg's "expander") for a ResNet-50: Linear-BN-ReLU
    twice then Linear, 8192 wide, not L2-normalized. Its output layer keeps a bias, which
    both losses ignore (they centre every dimension over the batch, and VICReg's
    invariance term is a difference of the two views), where the official heads have none."""
    return ProjectionHead((8192, 8192), 8192, normalize=False)


@register
class BarlowTwins(ContrastiveModel):
    """z = projector(encoder(view)); the Barlow Twins loss of the views' z (labels unused).

    The default head is the paper's projector (`papers_projector`); pass a smaller
    `ProjectionHead(..., normalize=False)` as `head` for small data.
    """

    min_views = 2
    default_loss = BarlowTwinsLoss

    def __init__(self, encoder, head=None, loss=None, **kwargs):
        super().__init__(encoder, head=head if head is not None else papers_projector(),
                         loss=loss, **kwargs)


@register
class VICReg(ContrastiveModel):
    """z = expander(encoder(view)); the VICReg loss of the views' z (labels unused).

    The default head is the paper's expander (`papers_projector`). A head that
    L2-normalizes its output is refused: the variance term asks every dimension's
    standard deviation to reach 1, which unit vectors of dim > 1 cannot do.
    """

    min_views = 2
    default_loss = VICRegLoss

    def __init__(self, encoder, head=None, loss=None, **kwargs):
        head = head if head is not None else papers_projector()
        if getattr(head, "normalize", False):
            raise ValueError(
                "`head` of VICReg must not L2-normalize its output: the variance term asks "
                "each dimension's std to reach 1, out of reach of unit vectors. Pass "
                "`ProjectionHead(..., normalize=False)` (config: head.normalize=False); "
                f"received a head with normalize={head.normalize!r}.")
        super().__init__(encoder, head=head, loss=loss, **kwargs)
