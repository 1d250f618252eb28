"""The learnable logit scale (and bias) of image-text contrastive losses.

CLIP and SigLIP learn their temperature as a log scale `t'` (logits `exp(t') * <x, y>`);
SigLIP adds a learnable bias. The layer owns the variables (the similarity apart from the
loss, as keras-hub's `SigLIPHead`); `supcon_tf.losses.clip` takes their values.
"""

import math

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive


@register
class MaxValue(keras.constraints.Constraint):
    """Clips a variable at `max_value` after each optimizer step (open_clip's clamp)."""

    def __init__(self, max_value):
        self.max_value = float(max_value)

    def __call__(self, w):
        return ops.minimum(w, ops.cast(self.max_value, w.dtype))

    def get_config(self):
        return {"max_value": self.max_value}


@register
class LogitScale(keras.layers.Layer):
    """`log_scale` (initialized to log(scale_init), clipped at log(max_scale) after each
    step when given) and, with `use_bias`, `bias` (initialized to bias_init).

    Without `use_bias` the bias is a non-trainable 0.
    """

    def __init__(self, scale_init=1.0 / 0.07, max_scale=100.0, use_bias=False, bias_init=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.scale_init = float(check_positive("scale_init", check_number("scale_init",
                                                                          scale_init)))
        self.max_scale = None if max_scale is None else float(
            check_positive("max_scale", check_number("max_scale", max_scale)))
        self.use_bias = bool(use_bias)
        self.bias_init = check_number("bias_init", bias_init)
        constraint = None if self.max_scale is None else MaxValue(math.log(self.max_scale))
        self.log_scale = self.add_weight(
            shape=(), name="log_scale", constraint=constraint,
            initializer=keras.initializers.Constant(math.log(self.scale_init)))
        self.bias = self.add_weight(
            shape=(), name="bias", trainable=self.use_bias,
            initializer=keras.initializers.Constant(self.bias_init if self.use_bias else 0.0))
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(scale_init=self.scale_init, max_scale=self.max_scale,
                      use_bias=self.use_bias, bias_init=self.bias_init)
        return config
