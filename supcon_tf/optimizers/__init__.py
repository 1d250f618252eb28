"""Optimizers by name (`get("lars", learning_rate=...)`), LARS, learning-rate schedules and
a weight-decay schedule.

`get` builds "lars" (this package's `LARS`) or Keras' own "sgd", "adam", "adamw" and
"lamb" with the given keyword arguments; an unknown name raises a ValueError that
lists the valid ones.
"""

import keras

from supcon_tf.optimizers.lars import DEFAULT_EXCLUDE, LARS
from supcon_tf.optimizers.multipliers import set_lr_multiplier
from supcon_tf.optimizers.schedules import SCALING_RULES, WarmupCosine, scale_learning_rate
from supcon_tf.optimizers.weight_decay import CosineRamp, set_weight_decay_schedule
from supcon_tf.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("lars")(LARS)
OPTIMIZERS.register("sgd")(keras.optimizers.SGD)
OPTIMIZERS.register("adam")(keras.optimizers.Adam)
OPTIMIZERS.register("adamw")(keras.optimizers.AdamW)
OPTIMIZERS.register("lamb")(keras.optimizers.Lamb)


def get(identifier, **kwargs):
    """An optimizer from a registered name and its keyword arguments, or an Optimizer as is."""
    if isinstance(identifier, keras.optimizers.Optimizer):
        return identifier
    return OPTIMIZERS.get(identifier, **kwargs)


__all__ = ["DEFAULT_EXCLUDE", "LARS", "OPTIMIZERS", "SCALING_RULES", "CosineRamp",
           "WarmupCosine", "get", "scale_learning_rate", "set_lr_multiplier",
           "set_weight_decay_schedule"]
