"""Heads: the projection MLP (SimSiam's projector and predictor too), the linear
classifier, the fine-tuning classifier, the online linear probe, SwAV's prototypes, DINO's
weight-normalized last layer and CPC's autoregressive context network."""

from supcon_tf.heads.context import ContextNetwork
from supcon_tf.heads.finetune import FineTuneHead
from supcon_tf.heads.linear import LinearHead
from supcon_tf.heads.probe import OnlineProbe, as_probe
from supcon_tf.heads.proxies import Proxies
from supcon_tf.heads.projection import ProjectionHead
from supcon_tf.heads.prototypes import Prototypes
from supcon_tf.heads.weight_norm import WeightNormLinear

__all__ = ["ContextNetwork", "FineTuneHead", "LinearHead", "OnlineProbe", "ProjectionHead",
           "Prototypes", "Proxies", "WeightNormLinear", "as_probe"]
