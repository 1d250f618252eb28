"""Losses: the `contrastive_loss` core and its Keras `Loss` classes; MoCo's queue losses,
BYOL's, SimSiam's and SwAV's (with `sinkhorn_knopp`)."""

from supcon_tf.losses.blocked import blocked_contrastive_loss
from supcon_tf.losses.byol import BYOLLoss, byol_loss
from supcon_tf.losses.classes import SimCLRLoss, SupConLoss
from supcon_tf.losses.contrastive import (
    CONTRAST_MODES,
    DENOMINATOR_MODES,
    SUMMATION_LOCATIONS,
    contrastive_loss,
)
from supcon_tf.losses.queue import MoCoLoss, QueueSupConLoss, moco_loss, queue_supcon_loss
from supcon_tf.losses.simsiam import SimSiamLoss, collapse_std, simsiam_loss
from supcon_tf.losses.swav import SwAVLoss, sinkhorn_knopp, swav_loss

__all__ = [
    "BYOLLoss",
    "MoCoLoss",
    "QueueSupConLoss",
    "CONTRAST_MODES",
    "DENOMINATOR_MODES",
    "SUMMATION_LOCATIONS",
    "SimCLRLoss",
    "SimSiamLoss",
    "SupConLoss",
    "SwAVLoss",
    "blocked_contrastive_loss",
    "byol_loss",
    "collapse_std",
    "contrastive_loss",
    "moco_loss",
    "queue_supcon_loss",
    "simsiam_loss",
    "sinkhorn_knopp",
    "swav_loss",
]
