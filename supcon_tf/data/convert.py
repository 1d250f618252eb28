"""Load-time conversions any loader offers: resize to one size, grayscale to RGB.

`convert(ds, info, image_size, to_rgb)` applies them to a dataset of (uint8 image,
label) and returns the matching `DatasetInfo`; `resize_uint8` is the one resize of
uint8 images (bilinear, rounded and clipped back to uint8) the pipelines share.
"""

import dataclasses

from supcon_tf.views.base import check_size


def resize_uint8(image, size):
    """uint8 image(s) [..., H, W, C] resized bilinearly to `size` (h, w), still uint8."""
    import tensorflow as tf

    resized = tf.image.resize(image, size)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def convert(ds, info, image_size=None, to_rgb=False):
    """(ds, info) with every image resized to `image_size` (H, W) and, with `to_rgb`,
    one-channel images repeated to three; unchanged when neither applies."""
    import tensorflow as tf

    if not isinstance(to_rgb, bool):
        raise ValueError(f"`to_rgb` must be True or False; received to_rgb={to_rgb!r}.")
    size = None if image_size is None else check_size("image_size", image_size)
    height, width, channels = info.image_shape
    gray_to_rgb = to_rgb and channels == 1
    if size is None and not gray_to_rgb:
        return ds, info
    shape = (*(size or (height, width)), 3 if gray_to_rgb else channels)

    def apply(image, label):
        if size is not None:
            image = resize_uint8(image, size)
        if gray_to_rgb:
            image = tf.image.grayscale_to_rgb(image)
        image.set_shape(shape)
        return image, label

    ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, dataclasses.replace(info, image_shape=shape)
