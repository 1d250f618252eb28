"""supcon-tf: supervised contrastive learning (SupCon), SimCLR and metric learning for Keras 3 /
TensorFlow.

The public API on one screen. Core modules (losses, encoders, heads, methods) are
backend-agnostic and imported eagerly; modules built on TensorFlow (data pipelines,
export) load on first access, so `import supcon_tf` also works on the JAX backend.
"""

import importlib

from supcon_tf import distribute, encoders, heads, losses, methods, registry
from supcon_tf.heads import LinearHead, ProjectionHead, Prototypes
from supcon_tf.losses import (
    BYOLLoss,
    BarlowTwinsLoss,
    DINOLoss,
    InstDiscLoss,
    MoCoLoss,
    NNCLRLoss,
    QueueSupConLoss,
    SimCLRLoss,
    SimSiamLoss,
    SupConLoss,
    SwAVLoss,
    VICRegLoss,
    contrastive_loss,
    sinkhorn_knopp,
)
from supcon_tf.methods import (
    BYOL,
    BarlowTwins,
    DINO,
    ContrastiveModel,
    CrossEntropyClassifier,
    FeatureQueue,
    InstDisc,
    LinearClassifier,
    MoCo,
    MetricLearning,
    NNCLR,
    NonFiniteLossError,
    SimCLR,
    SimSiam,
    SupCon,
    SupConMoCo,
    SwAV,
    Teacher,
    VICReg,
)

__version__ = "0.1.0"  # The one source: setup.py reads it for the distribution's metadata.

_LAZY = ("data", "views", "optimizers", "precision", "evaluation", "export")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"supcon_tf.{name}")
    raise AttributeError(f"module 'supcon_tf' has no attribute {name!r}")


__all__ = [
    "BYOL",
    "BYOLLoss",
    "BarlowTwins",
    "BarlowTwinsLoss",
    "ContrastiveModel",
    "CrossEntropyClassifier",
    "DINO",
    "DINOLoss",
    "FeatureQueue",
    "InstDisc",
    "InstDiscLoss",
    "LinearClassifier",
    "LinearHead",
    "MoCo",
    "MoCoLoss",
    "MetricLearning",
    "NNCLR",
    "NNCLRLoss",
    "NonFiniteLossError",
    "ProjectionHead",
    "Prototypes",
    "QueueSupConLoss",
    "SimCLR",
    "SimCLRLoss",
    "SimSiam",
    "SimSiamLoss",
    "SupCon",
    "SupConLoss",
    "SupConMoCo",
    "SwAV",
    "SwAVLoss",
    "Teacher",
    "VICReg",
    "VICRegLoss",
    "contrastive_loss",
    "sinkhorn_knopp",
    "distribute",
    "encoders",
    "heads",
    "losses",
    "methods",
    "registry",
    *_LAZY,
]
