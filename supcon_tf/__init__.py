"""supcon-tf: supervised contrastive learning (SupCon) and SimCLR for Keras 3 / TensorFlow.

The public API on one screen. Core modules (losses, encoders, heads, methods) are
backend-agnostic and imported eagerly; modules built on TensorFlow (data pipelines,
export) load on first access, so `import supcon_tf` also works on the JAX backend.
"""

import importlib

from supcon_tf import distribute, encoders, heads, losses, methods, registry
from supcon_tf.heads import LinearHead, ProjectionHead
from supcon_tf.losses import SimCLRLoss, SupConLoss, contrastive_loss
from supcon_tf.methods import (
    ContrastiveModel,
    CrossEntropyClassifier,
    LinearClassifier,
    NonFiniteLossError,
    SimCLR,
    SupCon,
)

__version__ = "0.1.0"

_LAZY = ("data", "views", "optimizers", "precision", "evaluation", "export")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"supcon_tf.{name}")
    raise AttributeError(f"module 'supcon_tf' has no attribute {name!r}")


__all__ = [
    "ContrastiveModel",
    "CrossEntropyClassifier",
    "LinearClassifier",
    "LinearHead",
    "NonFiniteLossError",
    "ProjectionHead",
    "SimCLR",
    "SimCLRLoss",
    "SupCon",
    "SupConLoss",
    "contrastive_loss",
    "distribute",
    "encoders",
    "heads",
    "losses",
    "methods",
    "registry",
    *_LAZY,
]
