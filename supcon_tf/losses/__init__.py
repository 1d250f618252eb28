"""Losses: the `contrastive_loss` core and its Keras `Loss` classes; metric-learning
losses; MoCo's queue losses, BYOL's, SimSiam's, SwAV's (with `sinkhorn_knopp`), NNCLR's and
DINO's; the framework's NCE (AMDIM, CPC); Barlow Twins' and VICReg's (redundancy
reduction); CLIP's and SigLIP's (image-text)."""

from supcon_tf.losses.blocked import blocked_contrastive_loss
from supcon_tf.losses.byol import BYOLLoss, byol_loss
from supcon_tf.losses.classes import SimCLRLoss, SupConLoss
from supcon_tf.losses.dino import DINOLoss, dino_loss
from supcon_tf.losses.clip import CLIPLoss, SigLIPLoss, clip_loss, siglip_loss
from supcon_tf.losses.contrastive import (
    CONTRAST_MODES,
    DENOMINATOR_MODES,
    SUMMATION_LOCATIONS,
    contrastive_loss,
)
from supcon_tf.losses.instdisc import InstDiscLoss, instdisc_loss
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
from supcon_tf.losses.redundancy import (
    BarlowTwinsLoss,
    VICRegLoss,
    barlow_twins_loss,
    vicreg_loss,
)
from supcon_tf.losses.nce import NCELoss, nce_loss, tanh_clip
from supcon_tf.losses.nnclr import NNCLRLoss, nearest_neighbours, nnclr_loss
from supcon_tf.losses.simsiam import SimSiamLoss, collapse_std, simsiam_loss
from supcon_tf.losses.swav import SwAVLoss, sinkhorn_knopp, swav_loss

__all__ = [
    "BYOLLoss",
    "BarlowTwinsLoss",
    "DINOLoss",
    "CLIPLoss",
    "SigLIPLoss",
    "clip_loss",
    "siglip_loss",
    "InstDiscLoss",
    "MoCoLoss",
    "QueueSupConLoss",
    "CONTRAST_MODES",
    "METRIC_LOSSES",
    "TRIPLET_MINING",
    "CircleLoss",
    "MultiSimilarityLoss",
    "NCELoss",
    "NNCLRLoss",
    "ProxyAnchorLoss",
    "TripletLoss",
    "circle_loss",
    "metric_loss",
    "multi_similarity_loss",
    "nearest_neighbours",
    "nce_loss",
    "nnclr_loss",
    "proxy_anchor_loss",
    "triplet_loss",
    "DENOMINATOR_MODES",
    "SUMMATION_LOCATIONS",
    "SimCLRLoss",
    "SimSiamLoss",
    "SupConLoss",
    "SwAVLoss",
    "VICRegLoss",
    "blocked_contrastive_loss",
    "barlow_twins_loss",
    "byol_loss",
    "collapse_std",
    "contrastive_loss",
    "dino_loss",
    "instdisc_loss",
    "moco_loss",
    "queue_supcon_loss",
    "simsiam_loss",
    "sinkhorn_knopp",
    "swav_loss",
    "tanh_clip",
    "vicreg_loss",
]
