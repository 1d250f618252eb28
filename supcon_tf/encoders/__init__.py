"""Encoders: ResNet family (CIFAR / ImageNet stems), ViT-Tiny / ViT-Small, a small CNN,
adapters, and any of them over a grid of patches (CPC's `patch_encoder`, name "patches").

`get("resnet18", input_shape=(32, 32, 3), stem="cifar")` builds by name;
`get(model)` accepts any `keras.Model`; `get("hub:PATH_OR_URL", trainable=False)` wraps
a SavedModel / TF Hub module (see `encoders.hub`); `feature_maps(encoder, names)` gives an
encoder's named intermediate feature maps (see `encoders.feature_maps`).
"""

import functools

import keras

from supcon_tf.encoders.adapters import as_encoder
from supcon_tf.encoders.feature_maps import feature_maps
from supcon_tf.encoders.hub import HubEncoderLayer, hub_encoder
from supcon_tf.encoders.patches import PatchGrid, Patches, patch_encoder
from supcon_tf.encoders.resnet import RESNET_LAYOUTS, batch_norm, resnet
from supcon_tf.encoders.small import small_cnn
from supcon_tf.encoders.vit import VARIANTS as VIT_VARIANTS, vit
from supcon_tf.registry import Registry

ENCODERS = Registry("encoder")
for _depth in RESNET_LAYOUTS:
    ENCODERS.register(f"resnet{_depth}")(functools.partial(resnet, _depth))
ENCODERS.register("small_cnn")(small_cnn)
ENCODERS.register("patches")(patch_encoder)
for _variant in VIT_VARIANTS:
    ENCODERS.register(_variant)(functools.partial(vit, _variant))
HUB_PREFIX = "hub:"


def get(identifier, **kwargs):
    """An encoder from a registered name (with its keyword arguments) or a Model."""
    if isinstance(identifier, keras.Model):
        return as_encoder(identifier)
    if isinstance(identifier, str) and identifier.startswith(HUB_PREFIX):
        return hub_encoder(identifier[len(HUB_PREFIX):], **kwargs)
    return ENCODERS.get(identifier, **kwargs)


__all__ = ["ENCODERS", "HUB_PREFIX", "HubEncoderLayer", "PatchGrid", "Patches", "as_encoder",
           "batch_norm", "feature_maps", "get", "hub_encoder", "patch_encoder", "resnet",
           "small_cnn", "vit"]
