"""Contrastive losses: the `contrastive_loss` core and its Keras `Loss` classes."""

from supcon_tf.losses.blocked import blocked_contrastive_loss
from supcon_tf.losses.classes import SimCLRLoss, SupConLoss
from supcon_tf.losses.contrastive import (
    CONTRAST_MODES,
    DENOMINATOR_MODES,
    SUMMATION_LOCATIONS,
    contrastive_loss,
)

__all__ = [
    "CONTRAST_MODES",
    "DENOMINATOR_MODES",
    "SUMMATION_LOCATIONS",
    "SimCLRLoss",
    "SupConLoss",
    "blocked_contrastive_loss",
    "contrastive_loss",
]
