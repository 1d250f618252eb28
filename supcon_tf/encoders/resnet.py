"""ResNet v1 encoders (He et al. 2016) with CIFAR and ImageNet stems.

The block layout follows torchvision / SimCLR's TF2 code (stride in the 3x3
convolution); BatchNorm uses the official SupCon settings (momentum 0.9, epsilon
1e-5), or `norm="layer"` puts layer normalization in its place (CPC v2). The model maps
images [batch, H, W, C] to the pooled representation.
"""

import keras
from keras import layers

from supcon_tf.validation import check_choice, check_image_shape, check_positive

# depth -> (block kind, blocks per stage)
RESNET_LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
STEMS = ("cifar", "imagenet")
NORMS = ("batch", "layer")
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def batch_norm(sync_batch_norm=False, name=None, gamma_zero=False):
    """BatchNorm with the official SupCon/SimCLR settings, optionally synchronized.

    Synchronization matters under `tf.distribute`, where each replica sees a slice
    of the batch. On JAX a jit-compiled step sees the global (sharded) batch as one
    array, so its statistics are already global and Keras' flag does not apply.
    """
    return layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        synchronized=bool(sync_batch_norm) and keras.backend.backend() == "tensorflow",
        gamma_initializer="zeros" if gamma_zero else "ones",
        name=name,
    )


def check_norm(norm, sync_batch_norm=False):
    """`norm` if it is one of NORMS and agrees with `sync_batch_norm`; ValueError otherwise."""
    check_choice("norm", norm, NORMS)
    if norm == "layer" and sync_batch_norm:
        raise ValueError("`sync_batch_norm` synchronizes BatchNorm statistics; with "
                         "norm='layer' there are none. Received sync_batch_norm=True.")
    return norm


def normalization(norm="batch", sync_batch_norm=False, name=None, gamma_zero=False):
    """The encoders' normalization layer: `batch_norm`, or with norm="layer" layer
    normalization over each sample's whole feature map (H, W, C) with a scale and offset
    per channel, as CPC v2 uses in place of BatchNorm so that no statistic crosses the
    samples (or patches) of a batch. It is GroupNormalization with one group."""
    if check_norm(norm, sync_batch_norm) == "batch":
        return batch_norm(sync_batch_norm, name, gamma_zero)
    return layers.GroupNormalization(groups=1, epsilon=BN_EPSILON, name=name,
                                     gamma_initializer="zeros" if gamma_zero else "ones")


def _conv(filters, kernel, strides, name):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=name)


def _block(x, filters, strides, kind, norm, name):
    """One residual block; `norm(name)` makes each normalization layer."""
    expansion = 4 if kind == "bottleneck" else 1
    out_filters = filters * expansion
    shortcut = x
    if strides != 1 or x.shape[-1] != out_filters:
        shortcut = _conv(out_filters, 1, strides, f"{name}_proj_conv")(x)
        shortcut = norm(f"{name}_proj_bn")(shortcut)
    if kind == "basic":
        y = _conv(filters, 3, strides, f"{name}_conv1")(x)
        y = layers.ReLU(name=f"{name}_relu1")(norm(f"{name}_bn1")(y))
        y = _conv(filters, 3, 1, f"{name}_conv2")(y)
        y = norm(f"{name}_bn2")(y)
    else:
        y = _conv(filters, 1, 1, f"{name}_conv1")(x)
        y = layers.ReLU(name=f"{name}_relu1")(norm(f"{name}_bn1")(y))
        y = _conv(filters, 3, strides, f"{name}_conv2")(y)
        y = layers.ReLU(name=f"{name}_relu2")(norm(f"{name}_bn2")(y))
        y = _conv(out_filters, 1, 1, f"{name}_conv3")(y)
        y = norm(f"{name}_bn3")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet(depth=50, stem="imagenet", width_multiplier=1.0, input_shape=(224, 224, 3),
           sync_batch_norm=False, norm="batch", name=None):
    """A functional ResNet v1 returning the global-average-pooled representation.

    Args:
      depth: one of 18, 34, 50, 101, 152, 200.
      stem: "imagenet" (7x7/2 conv + 3x3/2 max-pool) or "cifar" (3x3/1 conv, no pool).
      width_multiplier: scales every layer's channels (0.125 gives tiny test models).
      input_shape: (H, W, C) of the float images the encoder takes.
      sync_batch_norm: synchronize BatchNorm statistics across replicas.
      norm: "batch" (BatchNorm) or "layer" (layer normalization, CPC v2's choice).
    """
    if depth not in RESNET_LAYOUTS:
        raise ValueError(
            f"`depth` must be one of {sorted(RESNET_LAYOUTS)}; received depth={depth!r}."
        )
    check_choice("stem", stem, STEMS)
    check_positive("width_multiplier", width_multiplier)
    kind, stages = RESNET_LAYOUTS[depth]
    check_norm(norm, sync_batch_norm)

    def norm_layer(layer_name):
        return normalization(norm, sync_batch_norm, layer_name)

    def width(c):
        return max(1, int(round(c * width_multiplier)))

    inputs = keras.Input(shape=check_image_shape("input_shape", input_shape), name="images")
    if stem == "imagenet":
        x = _conv(width(64), 7, 2, "stem_conv")(inputs)
        x = layers.ReLU(name="stem_relu")(norm_layer("stem_bn")(x))
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    else:
        x = _conv(width(64), 3, 1, "stem_conv")(inputs)
        x = layers.ReLU(name="stem_relu")(norm_layer("stem_bn")(x))
    for stage, num_blocks in enumerate(stages):
        for block in range(num_blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _block(x, width(64 * 2**stage), strides, kind, norm_layer,
                       f"stage{stage + 1}_block{block + 1}")
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}_{stem}")
