"""An encoder over a grid of overlapping patches (CPC; Hénaff et al., ICML 2020).

`patch_encoder(input_shape, encoder="resnet50", patch_size=64, overlap=32)` is a
functional Keras model: it cuts images into the grid (`views.patch_grid`), augments
every patch on its own while training (`augmentation`, CPC v2's per-patch
augmentation), encodes the patches batched as images with `encoder`, and returns
their features mean-pooled over the grid, CPC's representation for linear evaluation
(the paper's 7x7 grid of features spatially pooled). Its layer "patch_grid" holds the
grid of features [b, rows, cols, d] that CPC's context network reads, a feature map
like any other (`encoders.feature_maps`).
"""

import inspect

import keras
from keras import layers, ops

from supcon_tf import views
from supcon_tf.registry import register
from supcon_tf.validation import check_image_shape
from supcon_tf.views.patches import check_patches, cut_patches, patch_grid

GRID = "patch_grid"  # The layer (and feature-map name) of the grid of patch features.


@register
class Patches(layers.Layer):
    """images [b, H, W, C] -> the grid's patches batched as images [b * rows * cols, p, p, C]
    (row-major), each drawn through `augmenter` when training."""

    def __init__(self, patch_size, overlap, augmenter=None, **kwargs):
        super().__init__(**kwargs)
        self.patch_size, self.overlap = check_patches(patch_size, overlap)
        if isinstance(augmenter, dict):
            augmenter = keras.saving.deserialize_keras_object(augmenter)
        self.augmenter = augmenter

    def build(self, input_shape):
        patch_grid(tuple(input_shape[1:3]), self.patch_size, self.overlap)

    def call(self, images, training=False):
        patches = cut_patches(images, self.patch_size, self.overlap)
        flat = ops.reshape(patches, (-1, self.patch_size, self.patch_size, images.shape[-1]))
        if training and self.augmenter is not None:
            flat = self.augmenter(flat, training=True)
        return flat

    def compute_output_shape(self, input_shape):
        rows, cols = patch_grid(tuple(input_shape[1:3]), self.patch_size, self.overlap)
        batch = None if input_shape[0] is None else input_shape[0] * rows * cols
        return (batch, self.patch_size, self.patch_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(patch_size=self.patch_size, overlap=self.overlap,
                      augmenter=keras.saving.serialize_keras_object(self.augmenter))
        return config


@register
class PatchGrid(layers.Layer):
    """Patch features [b * rows * cols, d] (row-major) -> the grid [b, rows, cols, d]."""

    def __init__(self, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.cols = int(rows), int(cols)

    def call(self, features):
        return ops.reshape(features, (-1, self.rows, self.cols, features.shape[-1]))

    def compute_output_shape(self, input_shape):
        batch = None if input_shape[0] is None else input_shape[0] // (self.rows * self.cols)
        return (batch, self.rows, self.cols, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(rows=self.rows, cols=self.cols)
        return config


def _inner(encoder, encoder_kwargs, patch_shape):
    """The encoder of one patch: a model, or a registered name built for `patch_shape`."""
    if isinstance(encoder, keras.layers.Layer):
        if encoder_kwargs:
            raise ValueError("`encoder_kwargs` applies to an encoder given by name; received "
                             f"{sorted(encoder_kwargs)} with a built encoder.")
        return encoder
    from supcon_tf.encoders import ENCODERS  # The package's registry imports this module.

    if encoder == "patches" or encoder not in ENCODERS:
        valid = [n for n in ENCODERS.names() if n != "patches"]
        raise ValueError(f"`encoder` must be a registered encoder name other than 'patches' "
                         f"or a Keras model; received encoder={encoder!r}. Valid names: "
                         f"{', '.join(valid)}.")
    factory = ENCODERS.lookup(encoder)
    accepted = set(inspect.signature(factory).parameters) - {"input_shape"}
    unknown = sorted(set(encoder_kwargs) - accepted)
    if unknown:
        raise ValueError(f"`encoder_kwargs` holds {unknown}, which encoder {encoder!r} does "
                         f"not take; valid: {', '.join(sorted(accepted))}.")
    return factory(input_shape=patch_shape, **encoder_kwargs)


def patch_encoder(input_shape=(224, 224, 3), encoder="resnet50", encoder_kwargs=None,
                  patch_size=64, overlap=32, augmentation="cpc_patches",
                  augmentation_kwargs=None, seed=None, name="patch_encoder"):
    """Images of `input_shape` -> `encoder`'s features mean-pooled over the patch grid.

    Args:
      input_shape: (H, W, C) of the images; the grid of `patch_size` patches overlapping
        by `overlap` pixels must tile it exactly (ValueError naming them otherwise).
      encoder: a registered encoder name (built for the patch size with
        `encoder_kwargs`) or a Keras model taking patches.
      augmentation: each patch's own augmentation while training: a policy name (built
        for the patch size with `augmentation_kwargs` and `seed`), a layer, or None.

    CPC v2's ImageNet setting is 64-pixel patches overlapping by 32 (a 7x7 grid on 256
    pixels) under a ResNet with LayerNorm; the layer `GRID` ("patch_grid") is the grid.
    """
    input_shape = check_image_shape("input_shape", input_shape)
    patch_size, overlap = check_patches(patch_size, overlap)
    rows, cols = patch_grid(input_shape[:2], patch_size, overlap)
    patch_shape = (patch_size, patch_size, input_shape[-1])
    inner = _inner(encoder, dict(encoder_kwargs or {}), patch_shape)
    if isinstance(augmentation, str):
        augmentation = views.get(augmentation, image_size=patch_shape[:2], seed=seed,
                                 **dict(augmentation_kwargs or {}))
    elif augmentation_kwargs:
        raise ValueError("`augmentation_kwargs` applies to an augmentation given by policy "
                         f"name; received augmentation={augmentation!r}.")
    images = keras.Input(shape=input_shape, name="images")
    patches = Patches(patch_size, overlap, augmentation, name="patches")(images)
    grid = PatchGrid(rows, cols, name=GRID)(inner(patches))
    pooled = layers.GlobalAveragePooling2D(name="grid_mean")(grid)
    return keras.Model(images, pooled, name=name)
