"""Losses: the `contrastive_loss` core and its Keras `Loss` classes; metric-learning
losses; MoCo's queue losses, CLIP's and SigLIP's, BYOL's, SimSiam's and SwAV's (with `sinkhorn_knopp`)."""

from supcon_tf.losses.blocked import blocked_contrastive_loss
from supcon_tf.losses.byol import BYOLLoss, byol_loss
from supcon_tf.losses.classes import SimCLRLoss, SupConLoss
from supcon_tf.losses.clip import CLIPLoss, SigLIPLoss, clip_loss, siglip_loss
from supcon_tf.losses.contrastive import (
    CONTRAST_MODES,
    DENOMINATOR_MODES,
    SUMMATION_LOCATIONS,
    contrastive_loss,
)
from supcon_tf.losses.queue import MoCoLoss, QueueSupConLoss, moco_loss, queue_supcon_loss
from supcon_tf.losses.metric import (
    TRIPLET_MINING,
    circle_loss,
    multi_similarity_loss,
    proxy_anchor_loss,
    triplet_loss,
)
from supcon_tf.losses.metric_classes import (
    METRIC_LOSSES,
    CircleLoss,
    MultiSimilarityLoss,
    ProxyAnchorLoss,
    TripletLoss,
    metric_loss,
)
from supcon_tf.losses.simsiam import SimSiamLoss, collapse_std, simsiam_loss
from supcon_tf.losses.swav import SwAVLoss, sinkhorn_knopp, swav_loss

__all__ = [
    "BYOLLoss",
    "CLIPLoss",
    "SigLIPLoss",
    "clip_loss",
    "siglip_loss",
    "MoCoLoss",
    "QueueSupConLoss",
    "CONTRAST_MODES",
    "METRIC_LOSSES",
    "TRIPLET_MINING",
    "CircleLoss",
    "MultiSimilarityLoss",
    "ProxyAnchorLoss",
    "TripletLoss",
    "circle_loss",
    "metric_loss",
    "multi_similarity_loss",
    "proxy_anchor_loss",
    "triplet_loss",
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
