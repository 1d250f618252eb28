"""In-graph decoding of encoded images (JPEG / PNG bytes) for the `encoded` signature.

A served model gets images as bytes (TF Serving's REST `{"b64": ...}`); the
signature decodes them, resizes them to the model's input when their size differs,
and scales them to [0, 1] the way the uint8 signatures do.
"""

ENCODED_SIGNATURE = "encoded"
# The formats the signature takes, by the first bytes of their files.
MAGIC_BYTES = {"JPEG": b"\xff\xd8\xff", "PNG": b"\x89PNG"}


def decode_images(data, image_shape):
    """tf.string [batch] of JPEG/PNG bytes -> uint8 [batch, H, W, C] of `image_shape`.

    Raises tf.errors.InvalidArgumentError naming the signature's `images` input and
    the first element that is neither JPEG nor PNG.
    """
    import tensorflow as tf

    height, width, channels = image_shape

    def decode_one(args):
        item, index = args
        known = [tf.strings.substr(item, 0, len(magic)) == magic for magic in MAGIC_BYTES.values()]
        check = tf.debugging.Assert(
            tf.reduce_any(tf.stack(known)),
            [f"input `images` of the {ENCODED_SIGNATURE} signature must hold JPEG or PNG "
             "bytes; element", index, "is neither (its first bytes:",
             tf.strings.substr(item, 0, 8), ")"])
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(item, channels=channels, expand_animations=False)
        size = tf.shape(image)[:2]
        same = tf.reduce_all(tf.equal(size, [height, width]))
        image = tf.cond(
            same, lambda: image,
            lambda: tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
                image, [height, width], antialias=True)), 0, 255), tf.uint8))
        return tf.ensure_shape(image, [height, width, channels])

    index = tf.range(tf.shape(data)[0])
    return tf.map_fn(decode_one, (data, index),
                     fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8))
