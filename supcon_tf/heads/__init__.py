"""Heads: the projection MLP and the linear classifier."""

from supcon_tf.heads.linear import LinearHead
from supcon_tf.heads.projection import ProjectionHead

__all__ = ["LinearHead", "ProjectionHead"]
