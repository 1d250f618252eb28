"""DINO's last layer: a weight-normalized linear map onto `out_dim` prototypes."""

import math

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_int


@register
class WeightNormLinear(keras.layers.Layer):
    """features [..., d] -> logits [..., out_dim] = features @ (g * v / ||v||), no bias.

    The official DINO head's `weight_norm(nn.Linear(bottleneck, out_dim, bias=False))`
    (Salimans & Kingma 2016): each output column is the direction v_k / ||v_k|| times a
    gain g_k, initialized to 1. With `norm_last_layer=True` (DINO's default) g stays 1
    (not trained): the logits are cosines of the L2-normalized features with the
    prototypes, which the paper found stabilizes training. v starts as PyTorch's
    `nn.Linear` default, U(-1/sqrt(d), 1/sqrt(d)). `call(features, gate)`: with gate 0
    no gradient reaches v or g (DINO freezes the last layer during the first epoch).
    """

    def __init__(self, out_dim=65536, norm_last_layer=True, **kwargs):
        super().__init__(**kwargs)
        self.out_dim = check_int("out_dim", out_dim, minimum=1)
        self.norm_last_layer = bool(norm_last_layer)

    def build(self, input_shape):
        bound = 1.0 / math.sqrt(int(input_shape[-1]))
        self.direction = self.add_weight(
            name="direction", shape=(input_shape[-1], self.out_dim), dtype="float32",
            initializer=keras.initializers.RandomUniform(-bound, bound))
        self.gain = self.add_weight(name="gain", shape=(self.out_dim,), dtype="float32",
                                    initializer="ones", trainable=not self.norm_last_layer)

    def call(self, features, gate=1.0, training=False):
        del training  # No training-only behaviour; taken for the teacher's call.
        v = ops.convert_to_tensor(self.direction)
        w = v / ops.sqrt(ops.sum(ops.square(v), axis=0, keepdims=True)) * self.gain
        frozen = ops.stop_gradient(w)
        w = frozen + ops.cast(gate, "float32") * (w - frozen)  # Value w; gradient x gate.
        return ops.matmul(ops.cast(features, "float32"), w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(out_dim=self.out_dim, norm_last_layer=self.norm_last_layer)
        return config
