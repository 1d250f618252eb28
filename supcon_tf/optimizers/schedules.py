"""Learning-rate schedules and the batch-size scaling rules of SimCLR / SupCon."""

import math

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_int, check_number, check_positive

SCALING_RULES = ("linear", "sqrt", "none")


def scale_learning_rate(base_learning_rate, batch_size, rule="linear"):
    """The learning rate for a global batch: `linear` lr * batch / 256, `sqrt` lr * sqrt(batch).

    `none` returns `base_learning_rate` unchanged. (SimCLR's `learning_rate_scaling`.)
    """
    check_choice("rule", rule, SCALING_RULES)
    check_positive("batch_size", batch_size)
    if rule == "linear":
        return base_learning_rate * batch_size / 256.0
    if rule == "sqrt":
        return base_learning_rate * math.sqrt(batch_size)
    return base_learning_rate


@register
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `base_learning_rate` over `warmup_steps`, then cosine decay.

    lr(step) = base * step / warmup_steps                              for step < warmup_steps
             = base * 0.5 * (1 + cos(pi * min(1, (step - warmup) / (total - warmup))))  after,
    reaching 0 at `total_steps` and staying there.
    """

    def __init__(self, base_learning_rate, total_steps, warmup_steps=0, name="warmup_cosine"):
        check_positive("base_learning_rate", base_learning_rate, allow_zero=True)
        check_positive("total_steps", total_steps)
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"`warmup_steps` must be in [0, total_steps={total_steps}]; "
                f"received warmup_steps={warmup_steps!r}."
            )
        self.base_learning_rate = check_number("base_learning_rate", base_learning_rate)
        self.total_steps = check_int("total_steps", total_steps, minimum=1)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        warm = self.base_learning_rate * step / max(warmup, 1.0)
        progress = ops.clip((step - warmup) / max(self.total_steps - warmup, 1.0), 0.0, 1.0)
        decayed = self.base_learning_rate * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, warm, decayed)

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "name": self.name}
