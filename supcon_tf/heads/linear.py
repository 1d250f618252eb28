"""A linear classification head, optionally behind a stop-gradient (linear probes)."""

import keras
from keras import layers, ops

from supcon_tf.registry import register
from supcon_tf.validation import check_int


@register
class LinearHead(keras.layers.Layer):
    """Dense logits over `num_classes`; `stop_gradient` keeps gradients off the input."""

    def __init__(self, num_classes, stop_gradient=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.stop_gradient = bool(stop_gradient)
        self.dense = layers.Dense(self.num_classes, name="logits", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        if self.stop_gradient:
            inputs = ops.stop_gradient(inputs)
        # Logits in float32 under mixed precision: softmax / top-k metrics need it.
        return ops.cast(self.dense(inputs), "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, stop_gradient=self.stop_gradient)
        return config
