"""Losses: the `contrastive_loss` core and its Keras `Loss` classes; SimSiam's and
SwAV's (with `sinkhorn_knopp`)."""

from supcon_tf.losses.blocked import blocked_contrastive_loss
from supcon_tf.losses.classes import SimCLRLoss, SupConLoss
from supcon_tf.losses.contrastive import (
    CONTRAST_MODES,
    DENOMINATOR_MODES,
    SUMMATION_LOCATIONS,
    contrastive_loss,
)
from supcon_tf.losses.simsiam import SimSiamLoss, collapse_std, simsiam_loss
from supcon_tf.losses.swav import SwAVLoss, sinkhorn_knopp, swav_loss

__all__ = [
    "CONTRAST_MODES",
    "DENOMINATOR_MODES",
    "SUMMATION_LOCATIONS",
    "SimCLRLoss",
    "SimSiamLoss",
    "SupConLoss",
    "SwAVLoss",
    "blocked_contrastive_loss",
    "collapse_std",
    "contrastive_loss",
    "simsiam_loss",
    "sinkhorn_knopp",
    "swav_loss",
]
