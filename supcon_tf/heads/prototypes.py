"""SwAV's prototypes: K trainable unit vectors, scored against L2-normalized features."""

import keras
from keras import ops

from supcon_tf.losses.simsiam import l2_normalize
from supcon_tf.registry import register


@register
class Prototypes(keras.layers.Layer):
    """features [..., d] -> cosines [..., num_prototypes] with the prototypes.

    The prototype vectors are L2-normalized where they are used (every call), so they
    stay on the unit sphere without a projection step outside the train step (the
    paper renormalizes them in place after each update; here the normalization is
    part of the graph, which needs no state and runs in Keras' stateless JAX step).
    `call(features, gate)`: with gate 0 no gradient reaches the prototypes (SwAV
    freezes them during the first epoch); 1 trains them.
    """

    def __init__(self, num_prototypes=3000, **kwargs):
        super().__init__(**kwargs)
        if (not isinstance(num_prototypes, int) or isinstance(num_prototypes, bool)
                or num_prototypes < 1):
            raise ValueError(f"`num_prototypes` must be an int >= 1; received "
                             f"num_prototypes={num_prototypes!r}.")
        self.num_prototypes = num_prototypes

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.num_prototypes),
            initializer=keras.initializers.RandomNormal(stddev=1.0), dtype="float32")

    def call(self, features, gate=1.0):
        w = l2_normalize(ops.convert_to_tensor(self.kernel), axis=0)
        frozen = ops.stop_gradient(w)
        w = frozen + ops.cast(gate, "float32") * (w - frozen)  # Value w; gradient x gate.
        return ops.matmul(l2_normalize(ops.cast(features, "float32")), w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_prototypes,)

    def get_config(self):
        config = super().get_config()
        config["num_prototypes"] = self.num_prototypes
        return config
