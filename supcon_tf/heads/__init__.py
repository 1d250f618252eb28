"""Heads: the projection MLP, the linear classifier and the online linear probe."""

from supcon_tf.heads.linear import LinearHead
from supcon_tf.heads.probe import OnlineProbe, as_probe
from supcon_tf.heads.proxies import Proxies
from supcon_tf.heads.projection import ProjectionHead

__all__ = ["LinearHead", "OnlineProbe", "ProjectionHead", "Proxies", "as_probe"]
