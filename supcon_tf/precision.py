"""Mixed precision: one call sets the Keras dtype policy; float16 adds loss scaling.

`set_policy("mixed_bfloat16")` (TPUs, Ampere/Hopper GPUs) or `"mixed_float16"` (older
GPUs) before building the model: layers then compute in 16 bits and keep float32
variables. The contrastive loss is always computed in float32 (`contrastive_loss`
and the projection head cast to it). float16 needs loss scaling against gradient
underflow: `model.compile` wraps the optimizer in `keras.optimizers.LossScaleOptimizer`
itself when the model's policy is `mixed_float16` (its default `auto_scale_loss=True`);
`loss_scale_optimizer` does the same for custom training loops.
"""

import contextlib

import keras

from supcon_tf.validation import check_choice

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def set_policy(name):
    """Sets Keras' global dtype policy to one of `POLICIES`; returns the policy."""
    check_choice("name", name, POLICIES)
    keras.config.set_dtype_policy(name)
    return keras.config.dtype_policy()


def current_policy():
    """The name of Keras' global dtype policy."""
    return keras.config.dtype_policy().name


def needs_loss_scaling(policy=None):
    """Whether `policy` (default: the global one) computes in float16."""
    name = policy if isinstance(policy, str) else (policy or keras.config.dtype_policy()).name
    return name == "mixed_float16"


def loss_scale_optimizer(optimizer, policy=None):
    """`optimizer` wrapped in a dynamic `LossScaleOptimizer` when the policy is float16.

    Returns it unchanged for float32 / bfloat16 or when it is already wrapped.
    """
    if needs_loss_scaling(policy) and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


@contextlib.contextmanager
def policy_scope(name):
    """Sets the policy `name` for the duration of a `with` block, then restores the previous one."""
    previous = keras.config.dtype_policy()
    set_policy(name)
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)
