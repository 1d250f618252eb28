"""Contrastive losses: the `contrastive_loss` core and its Keras `Loss` classes."""

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

__all__ = [
    "BYOLLoss",
    "MoCoLoss",
    "QueueSupConLoss",
    "CONTRAST_MODES",
    "DENOMINATOR_MODES",
    "SUMMATION_LOCATIONS",
    "SimCLRLoss",
    "SupConLoss",
    "blocked_contrastive_loss",
    "byol_loss",
    "contrastive_loss",
    "moco_loss",
    "queue_supcon_loss",
]
