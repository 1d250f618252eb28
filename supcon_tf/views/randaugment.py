"""RandAugment (Cubuk et al. 2020) with the op choice drawn per image.

Keras' `RandAugment` draws its `num_ops` op indices once per batch; on a batch on
the accelerator every image would get the same ops. This subclass keeps Keras'
ops and magnitudes (each drawn per image by Keras' own sub-layers) and only draws
the op indices per image, so batched and per-image use draw from one distribution.
"""

import keras

from supcon_tf.registry import register


@register
class RandAugment(keras.layers.RandAugment):
    """`keras.layers.RandAugment` with per-image op indices; same arguments."""

    def get_random_transformation(self, data, training=True, seed=None):
        transformation = super().get_random_transformation(data, training=training, seed=seed)
        if transformation is None:
            return None
        images = data["images"] if isinstance(data, dict) else data
        batch = self.backend.shape(images)[0] if len(images.shape) == 4 else 1
        transformation["layer_idxes"] = self.backend.random.randint(
            (self.num_ops, batch), 0, len(self._AUGMENT_LAYERS),
            seed=self._get_seed_generator(self.backend._backend),
        )
        return transformation

    def transform_images(self, images, transformation, training=True):
        if not training:
            return self.backend.cast(images, self.compute_dtype)
        b = self.backend
        images = b.cast(images, self.compute_dtype)
        idx = transformation["layer_idxes"]
        for i in range(self.num_ops):
            chosen = idx[i][:, None, None, None] if len(images.shape) == 4 else idx[i][0]
            for j, (key, value) in enumerate(transformation["transforms"].items()):
                out = getattr(self, key).transform_images(images, value)
                images = b.numpy.where(chosen == j, b.cast(out, self.compute_dtype), images)
        return b.cast(images, self.compute_dtype)
