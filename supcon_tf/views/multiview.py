"""`MultiView`: num_views independent draws of one augmenter, stacked as [b, V, h, w, C]."""

import keras

from supcon_tf.registry import register
from supcon_tf.views.base import DataLayer, to_unit_float


@register
class MultiView(DataLayer):
    """images [b, H, W, C] -> views [b, num_views, h, w, C] (one image -> [V, h, w, C]).

    The batch is tiled num_views times and augmented in one call, so every view of
    every image draws its own transform and the augmenter runs on one large batch
    (what the accelerator wants). Works in `tf.data` and in a compiled step, like
    the augmenter it wraps; pass it as `augmenter=` of a method to augment on device.
    """

    def __init__(self, augmenter, num_views=2, **kwargs):
        super().__init__(**kwargs)
        if isinstance(augmenter, dict):
            augmenter = keras.layers.deserialize(augmenter)
        if not callable(augmenter):
            raise ValueError(f"`augmenter` must be a layer; received augmenter={augmenter!r}.")
        if not isinstance(num_views, int) or isinstance(num_views, bool) or num_views < 1:
            raise ValueError(
                f"`num_views` must be an int >= 1; received num_views={num_views!r}."
            )
        self.augmenter = augmenter
        self.num_views = num_views

    def __call__(self, images, training=True, **kwargs):
        return super().__call__(to_unit_float(images), training=training, **kwargs)

    def call(self, images, training=True):
        b = self.backend
        single = len(images.shape) == 3
        if single:
            images = b.numpy.expand_dims(images, 0)
        v = self.num_views
        batch = b.shape(images)[0]
        tiled = b.numpy.concatenate([images] * v, axis=0) if v > 1 else images
        views = self.augmenter(tiled, training=training)
        views = b.numpy.reshape(views, (v, batch, *views.shape[1:]))
        views = b.numpy.transpose(views, (1, 0, 2, 3, 4))
        return views[0] if single else views

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) == 3:
            out = self.augmenter.compute_output_shape((None, *input_shape))
            return (self.num_views, *out[1:])
        out = self.augmenter.compute_output_shape(input_shape)
        return (out[0], self.num_views, *out[1:])

    def get_config(self):
        config = super().get_config()
        config.update(augmenter=keras.layers.serialize(self.augmenter), num_views=self.num_views)
        return config
