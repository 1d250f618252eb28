"""The projection MLP of SimCLR / SupCon: representation -> L2-normalized embedding."""

import keras
from keras import layers, ops

from supcon_tf.encoders.resnet import batch_norm
from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_int

ACTIVATIONS = ("relu", "gelu")


def hidden_layers(dims, input_shape, use_batch_norm, sync_batch_norm, dtype=None):
    """Built (Dense, BatchNorm or None) pairs of widths `dims` on inputs of
    `input_shape`, and their output shape: the hidden layers of a projection MLP."""
    hidden, shape = [], tuple(input_shape)
    for i, d in enumerate(dims):
        dense = layers.Dense(d, use_bias=not use_batch_norm, name=f"hidden{i}", dtype=dtype)
        dense.build(shape)
        shape = shape[:-1] + (d,)
        bn = None
        if use_batch_norm:
            bn = batch_norm(sync_batch_norm, name=f"hidden{i}_bn")
            bn.build(shape)
        hidden.append((dense, bn))
    return hidden, shape


def apply_hidden(hidden, x, training=False, activation="relu"):
    """Dense(-BN)-activation (one of ACTIVATIONS) through the pairs of `hidden_layers`."""
    for dense, bn in hidden:
        x = dense(x)
        if bn is not None:
            x = bn(x, training=training)
        x = ops.relu(x) if activation == "relu" else ops.gelu(x, approximate=False)
    return x


@register
class ProjectionHead(keras.layers.Layer):
    """Dense(-BN)-ReLU hidden layers then a linear output, L2-normalized.

    `hidden_dims=None` uses one hidden layer as wide as the input (the papers'
    2048-2048-128 for ResNet-50). BatchNorm follows the official code (momentum
    0.9, epsilon 1e-5). `output_batch_norm=True` adds BatchNorm (no ReLU) after the
    output layer, which then has no bias: SimSiam's projector (Chen & He 2021) is
    `ProjectionHead((2048, 2048), 2048, output_batch_norm=True, normalize=False)`,
    and its bottleneck predictor `ProjectionHead((512,), 2048, normalize=False)`.
    `activation` is that of the hidden layers: "relu", or "gelu" (DINO's head, Caron
    et al. 2021: `ProjectionHead((2048, 2048), 256, use_batch_norm=False,
    activation="gelu")`).
    """

    def __init__(self, hidden_dims=None, output_dim=128, use_batch_norm=True,
                 sync_batch_norm=False, normalize=True, output_batch_norm=False,
                 activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_dims = None if hidden_dims is None else [
            check_int(f"hidden_dims[{i}]", d, minimum=1) for i, d in enumerate(hidden_dims)]
        self.output_dim = check_int("output_dim", output_dim, minimum=1)
        self.use_batch_norm = bool(use_batch_norm)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.normalize = bool(normalize)
        self.output_batch_norm = bool(output_batch_norm)
        self.activation = check_choice("activation", activation, ACTIVATIONS)

    def build(self, input_shape):
        dims = self.hidden_dims if self.hidden_dims is not None else [input_shape[-1]]
        self.hidden, shape = hidden_layers(dims, input_shape, self.use_batch_norm,
                                           self.sync_batch_norm, self.dtype_policy)
        self.out = layers.Dense(self.output_dim, use_bias=not self.output_batch_norm,
                                name="output", dtype=self.dtype_policy)
        self.out.build(shape)
        self.out_bn = None
        if self.output_batch_norm:
            self.out_bn = batch_norm(self.sync_batch_norm, name="output_bn")
            self.out_bn.build(shape[:-1] + (self.output_dim,))

    def call(self, inputs, training=False):
        x = self.out(apply_hidden(self.hidden, inputs, training, self.activation))
        if self.out_bn is not None:
            x = self.out_bn(x, training=training)
        if self.normalize:
            x = ops.normalize(ops.cast(x, "float32"), axis=-1)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_dims=self.hidden_dims, output_dim=self.output_dim,
                      use_batch_norm=self.use_batch_norm,
                      sync_batch_norm=self.sync_batch_norm, normalize=self.normalize,
                      output_batch_norm=self.output_batch_norm, activation=self.activation)
        return config
