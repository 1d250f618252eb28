"""A weight-decay schedule on any Keras optimizer (DINO's cosine 0.04 -> 0.4).

Keras optimizers take one float `weight_decay` (decoupled: w <- w - lr * wd * w,
applied to every variable not excluded, before the update step). DINO raises it by
a cosine over training (`utils.cosine_scheduler(0.04, 0.4, ...)` in the official
code). `set_weight_decay_schedule(optimizer, schedule)` makes the optimizer's own
weight-decay step use `schedule(iterations)` (the optimizer step about to be taken)
instead, in the TensorFlow and JAX steps alike: both call `_apply_weight_decay`,
which reads `weight_decay` while it runs. The float `weight_decay` stays the
optimizer's configured value (its `get_config` is unchanged); the schedule is not
saved with the optimizer, so whoever set it sets it again after a restore (`DINO`
does in `compile`). Calling it again replaces the schedule (it never wraps twice).
"""

import math

from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive


@register
class CosineRamp:
    """start + (end - start) * (1 - cos(pi * min(step / total_steps, 1))) / 2.

    DINO's `cosine_scheduler(base, final)` without warmup: `start` at step 0, `end`
    from `total_steps` on. `total_steps` may be set after construction (before the
    first call), e.g. from `fit`'s epochs x steps.
    """

    def __init__(self, start, end, total_steps=None):
        self.start = float(check_positive("start", start, allow_zero=True))
        self.end = float(check_positive("end", end, allow_zero=True))
        self.total_steps = None if total_steps is None else check_int("total_steps",
                                                                       total_steps, minimum=1)

    def __call__(self, step):
        if self.total_steps is None:
            raise ValueError("`total_steps` of the cosine weight-decay schedule must be set "
                             "(> 0) before training; received total_steps=None.")
        progress = ops.minimum(ops.cast(step, "float32") / float(self.total_steps), 1.0)
        return self.start + (self.end - self.start) * (1.0 - ops.cos(math.pi * progress)) / 2

    def get_config(self):
        return dict(start=self.start, end=self.end, total_steps=self.total_steps)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def set_weight_decay_schedule(optimizer, schedule):
    """Applies weight decay `schedule(optimizer.iterations)` at each step of `optimizer`."""
    if not callable(schedule):
        raise ValueError(f"`schedule` must be a callable of the step (e.g. CosineRamp); "
                         f"received schedule={schedule!r}.")
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if not inner.weight_decay:
        raise ValueError(
            "`weight_decay` of the optimizer must be set (> 0) for a weight-decay schedule "
            f"(its first value); received weight_decay={inner.weight_decay!r}. Use an "
            "optimizer with decoupled weight decay, e.g. AdamW(weight_decay=0.04).")
    if "_weight_decay_schedule" not in inner.__dict__:
        base_apply = inner._apply_weight_decay

        def apply_weight_decay(variables):
            configured = inner.weight_decay
            inner.weight_decay = inner.__dict__["_weight_decay_schedule"](inner.iterations)
            try:
                base_apply(variables)
            finally:
                inner.weight_decay = configured

        inner._apply_weight_decay = apply_weight_decay
    inner.__dict__["_weight_decay_schedule"] = schedule
    return optimizer
