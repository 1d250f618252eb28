"""The classifier head of fine-tuning: kept projection layers, then linear logits."""

import keras

from supcon_tf.heads.linear import LinearHead
from supcon_tf.heads.projection import ACTIVATIONS, apply_hidden, hidden_layers
from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_int


@register
class FineTuneHead(keras.layers.Layer):
    """`hidden_dims` Dense(-BN)-`activation` layers (a projection head's first ones, SimCLR's
    `ft_proj_selector`), then a `LinearHead`; with none it is the `LinearHead` alone.

    `copy_hidden(projection)` takes the kept layers' weights from a built
    `ProjectionHead`, whose first hidden layers these are.
    """

    def __init__(self, num_classes, hidden_dims=(), use_batch_norm=True,
                 sync_batch_norm=False, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.hidden_dims = [check_int(f"hidden_dims[{i}]", d, minimum=1)
                            for i, d in enumerate(hidden_dims or ())]
        self.use_batch_norm = bool(use_batch_norm)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.linear = LinearHead(self.num_classes, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.hidden, shape = hidden_layers(self.hidden_dims, input_shape, self.use_batch_norm,
                                           self.sync_batch_norm, self.dtype_policy)
        self.linear.build(shape)

    def call(self, inputs, training=False):
        return self.linear(apply_hidden(self.hidden, inputs, training, self.activation))

    def copy_hidden(self, projection):
        """Assigns the first `len(hidden_dims)` hidden layers of `projection`."""
        for (dense, bn), (source, source_bn) in zip(self.hidden, projection.hidden):
            for target, origin in ((dense, source), (bn, source_bn)):
                if target is not None:
                    for variable, value in zip(target.weights, origin.weights):
                        variable.assign(value)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, hidden_dims=self.hidden_dims,
                      use_batch_norm=self.use_batch_norm,
                      sync_batch_norm=self.sync_batch_norm, activation=self.activation)
        return config
