"""A small convolutional encoder for tiny images (e.g. 8x8 digits) and fast tests."""

import keras
from keras import layers

from supcon_tf.encoders.resnet import check_norm, normalization
from supcon_tf.validation import check_image_shape, check_int


def small_cnn(input_shape=(8, 8, 1), widths=(32, 64), dim=64, sync_batch_norm=False,
              norm="batch", name="small_cnn"):
    """Conv-BN-ReLU blocks (the last ones strided), global pooling, then a dense layer.

    `norm="layer"` puts layer normalization in place of BatchNorm (`resnet.normalization`).
    """
    input_shape = check_image_shape("input_shape", input_shape)
    if not isinstance(widths, (list, tuple)) or not widths:
        raise ValueError(f"`widths` must be a non-empty list of channel counts; received "
                         f"widths={widths!r}.")
    widths = [check_int(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths)]
    dim = check_int("dim", dim, minimum=1)
    check_norm(norm, sync_batch_norm)
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, strides=1 if i == 0 else 2, padding="same", use_bias=False,
                          name=f"conv{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(normalization(norm, sync_batch_norm, f"bn{i + 1}")(x))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(dim, activation="relu", name="dense")(x)
    return keras.Model(inputs, outputs, name=name)
