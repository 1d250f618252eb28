"""Learned class proxies (Proxy-Anchor, Kim et al. 2020): cosine similarity to each class."""

import keras
from keras import ops

from supcon_tf.losses.pairwise import pairwise_similarity
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive


@register
class Proxies(keras.layers.Layer):
    """One trainable proxy per class; `call(embeddings [b, d])` -> cosine similarities [b, C].

    Initialized as in the paper's code (Kaiming normal, fan-out). `lr_multiplier` is read
    by the method that owns the layer, which trains the proxies at that multiple of its
    optimizer's learning rate (`supcon_tf.optimizers.set_lr_multiplier`).
    """

    def __init__(self, num_classes, lr_multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, 1)
        self.lr_multiplier = float(check_positive("lr_multiplier", lr_multiplier))

    def build(self, input_shape):
        self.proxies = self.add_weight(
            shape=(self.num_classes, input_shape[-1]), name="proxies",
            initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"))

    def call(self, embeddings):
        return pairwise_similarity(ops.cast(embeddings, "float32"),
                                   ops.cast(self.proxies, "float32"))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, lr_multiplier=self.lr_multiplier)
        return config
