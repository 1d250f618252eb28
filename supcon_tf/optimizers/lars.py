"""LARS: layer-wise adaptive rate scaling (You et al. 2017), as SimCLR and SupCon train with it.

Each variable's step is scaled by its trust ratio `trust_coefficient * ||w|| / ||g + wd * w||`;
variables whose path matches an exclusion pattern (biases, BatchNorm parameters by
default) get neither weight decay nor the trust ratio: a plain momentum step.
Written with `keras.ops`, so it runs on every Keras backend.
"""

import re

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive

# Regular expressions searched in a variable's Keras 3 path, e.g. "encoder/bn1/gamma".
DEFAULT_EXCLUDE = (r"(^|/)bias$", r"(^|/)(gamma|beta)$", r"batch_norm")


@register
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with a per-variable trust ratio and coupled weight decay.

    For every variable `w` with gradient `g`, learning rate `lr` and momentum buffer `v`:

        if w is adapted (its path matches no pattern in `exclude_from_adaptation`):
            g = g + weight_decay * w
            lr = lr * (trust_coefficient * ||w|| / ||g||  if ||w|| > 0 and ||g|| > 0 else 1)
        v = momentum * v + lr * g
        w = w - (momentum * v + lr * g  if nesterov else v)

    Args:
      learning_rate: a float or a `LearningRateSchedule` (e.g. `WarmupCosine`).
      momentum: in [0, 1).
      weight_decay: >= 0, added to the gradient (not decoupled) of adapted variables.
      trust_coefficient: > 0, the trust ratio's `eta` (0.001 as in the papers).
      exclude_from_adaptation: regular expressions; a variable whose `path` matches one
        gets neither weight decay nor the trust ratio. The default matches biases,
        BatchNorm's gamma / beta and any path containing "batch_norm".
      nesterov: Nesterov momentum.
      **kwargs: the base optimizer's arguments (`clipnorm`, `use_ema`, ...).
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, weight_decay=0.0,
                 trust_coefficient=0.001, exclude_from_adaptation=DEFAULT_EXCLUDE,
                 nesterov=False, name="lars", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        momentum = check_number("momentum", momentum)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); received momentum={momentum!r}.")
        self.momentum = momentum
        # Stored apart from the base class' `weight_decay`, which would apply a decoupled decay.
        self.lars_weight_decay = float(check_positive("weight_decay", weight_decay,
                                                      allow_zero=True))
        self.trust_coefficient = float(check_positive("trust_coefficient", trust_coefficient))
        patterns = [exclude_from_adaptation] if isinstance(exclude_from_adaptation, str) \
            else list(exclude_from_adaptation or ())
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ValueError(
                    "`exclude_from_adaptation` must hold regular expressions; received "
                    f"exclude_from_adaptation={exclude_from_adaptation!r} ({error})."
                ) from None
        self.exclude_from_adaptation = tuple(patterns)
        self.nesterov = bool(nesterov)

    def adapts(self, variable):
        """Whether `variable` gets weight decay and the trust ratio: its path matches no pattern."""
        path = getattr(variable, "path", None) or variable.name
        return not any(re.search(p, path) for p in self.exclude_from_adaptation)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        # Decided once from the Keras variables (their paths); update_step looks it up by index.
        self._adapted = [self.adapts(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        if self._adapted[index]:
            if self.lars_weight_decay:
                gradient = gradient + ops.cast(self.lars_weight_decay, dtype) * variable
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            ratio = ops.where(
                ops.logical_and(w_norm > 0, g_norm > 0),
                ops.cast(self.trust_coefficient, dtype) * ops.divide_no_nan(w_norm, g_norm),
                ops.ones_like(w_norm),
            )
            learning_rate = learning_rate * ratio
        momentum = ops.cast(self.momentum, dtype)
        velocity = self.momentums[index]
        new_velocity = momentum * velocity + learning_rate * gradient
        self.assign(velocity, new_velocity)
        if self.nesterov:
            self.assign_sub(variable, momentum * new_velocity + learning_rate * gradient)
        else:
            self.assign_sub(variable, new_velocity)

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            weight_decay=self.lars_weight_decay,
            trust_coefficient=self.trust_coefficient,
            exclude_from_adaptation=list(self.exclude_from_adaptation),
            nesterov=self.nesterov,
        )
        return config
