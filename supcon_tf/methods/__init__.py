"""Methods: one `keras.Model` per method, and the stage-2 classifiers.

`get("supcon", encoder=..., head=...)` builds a method by name.
"""

from supcon_tf.methods.byol import BYOL
from supcon_tf.methods.base import ContrastiveModel, unpack_batch, view_groups, views_shape
from supcon_tf.methods.dino import DINO
from supcon_tf.methods.clip import CLIP
from supcon_tf.methods.classifier import CrossEntropyClassifier, LinearClassifier
from supcon_tf.methods.extractions import EXTRACTIONS, Extraction, MultiScale
from supcon_tf.methods.framework import Framework
from supcon_tf.methods.cpc import PatchPrediction
from supcon_tf.methods.gradient_cache import (
    GradientCache,
    GradientCacheSimCLR,
    GradientCacheSupCon,
)
from supcon_tf.methods.instdisc import InstDisc
from supcon_tf.methods.memory_bank import MemoryBank
from supcon_tf.methods.moco import MoCo, SupConMoCo
from supcon_tf.methods.momentum import MomentumModel
from supcon_tf.methods.queue import FeatureQueue
from supcon_tf.methods.redundancy import BarlowTwins, VICReg
from supcon_tf.methods.guards import NonFiniteLossError, NonFiniteLossGuard
from supcon_tf.methods.metric import MetricLearning
from supcon_tf.methods.nnclr import NNCLR
from supcon_tf.methods.simclr import SimCLR
from supcon_tf.methods.simsiam import SimSiam
from supcon_tf.methods.supcon import SupCon
from supcon_tf.methods.swav import SwAV
from supcon_tf.methods.teacher import Teacher
from supcon_tf.registry import Registry

METHODS = Registry("method")
METHODS.register("supcon")(SupCon)
METHODS.register("simclr")(SimCLR)
METHODS.register("moco")(MoCo)
METHODS.register("supcon_moco")(SupConMoCo)
METHODS.register("byol")(BYOL)
METHODS.register("metric")(MetricLearning)
METHODS.register("simsiam")(SimSiam)
METHODS.register("swav")(SwAV)
METHODS.register("barlow_twins")(BarlowTwins)
METHODS.register("vicreg")(VICReg)
METHODS.register("nnclr")(NNCLR)
METHODS.register("dino")(DINO)
METHODS.register("clip")(CLIP)
METHODS.register("instdisc")(InstDisc)
METHODS.register("framework")(Framework)


def get(name, **kwargs):
    """A contrastive method by registered name."""
    return METHODS.get(name, **kwargs)


__all__ = [
    "BYOL",
    "BarlowTwins",
    "CLIP",
    "METHODS",
    "ContrastiveModel",
    "CrossEntropyClassifier",
    "DINO",
    "EXTRACTIONS",
    "Extraction",
    "Framework",
    "FeatureQueue",
    "GradientCache",
    "GradientCacheSimCLR",
    "GradientCacheSupCon",
    "InstDisc",
    "LinearClassifier",
    "MemoryBank",
    "MetricLearning",
    "MoCo",
    "MomentumModel",
    "MultiScale",
    "NNCLR",
    "PatchPrediction",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "SimCLR",
    "SimSiam",
    "SupCon",
    "SupConMoCo",
    "SwAV",
    "Teacher",
    "VICReg",
    "get",
    "unpack_batch",
    "view_groups",
    "views_shape",
]
