"""Heads: the projection MLP (SimSiam's projector and predictor too), the linear
classifier, the fine-tuning classifier, the online linear probe and SwAV's prototypes."""

from supcon_tf.heads.finetune import FineTuneHead
from supcon_tf.heads.linear import LinearHead
from supcon_tf.heads.probe import OnlineProbe, as_probe
from supcon_tf.heads.proxies import Proxies
from supcon_tf.heads.projection import ProjectionHead
from supcon_tf.heads.prototypes import Prototypes

__all__ = ["FineTuneHead", "LinearHead", "OnlineProbe", "ProjectionHead", "Prototypes", "Proxies",
           "as_probe"]
