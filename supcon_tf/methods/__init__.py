"""Methods: one `keras.Model` per method, and the stage-2 classifiers.

`get("supcon", encoder=..., head=...)` builds a method by name.
"""

from supcon_tf.methods.base import ContrastiveModel, unpack_batch, views_shape
from supcon_tf.methods.classifier import CrossEntropyClassifier, LinearClassifier
from supcon_tf.methods.gradient_cache import (
    GradientCache,
    GradientCacheSimCLR,
    GradientCacheSupCon,
)
from supcon_tf.methods.guards import NonFiniteLossError, NonFiniteLossGuard
from supcon_tf.methods.simclr import SimCLR
from supcon_tf.methods.supcon import SupCon
from supcon_tf.registry import Registry

METHODS = Registry("method")
METHODS.register("supcon")(SupCon)
METHODS.register("simclr")(SimCLR)


def get(name, **kwargs):
    """A contrastive method by registered name."""
    return METHODS.get(name, **kwargs)


__all__ = [
    "METHODS",
    "ContrastiveModel",
    "CrossEntropyClassifier",
    "GradientCache",
    "GradientCacheSimCLR",
    "GradientCacheSupCon",
    "LinearClassifier",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "SimCLR",
    "SupCon",
    "get",
    "unpack_batch",
    "views_shape",
]
