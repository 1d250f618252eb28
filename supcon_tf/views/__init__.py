"""Augmenters as Keras layers and multi-view recipes (SimCLR, CIFAR, digits, RandAugment,
AutoAugment, eval; multi-crop; CPC's patch grid and per-patch augmentation).
`get(name, image_size=(H, W), **kwargs)` builds a named policy."""

from supcon_tf.views.autoaugment import AutoAugment
from supcon_tf.views.base import Augmenter, Compose
from supcon_tf.views.blur import GaussianBlur
from supcon_tf.views.color import ColorJitter, RandomGrayscale, Solarize
from supcon_tf.views.crop import CenterCropResize, RandomResizedCrop
from supcon_tf.views.multicrop import MultiCrop
from supcon_tf.views.multiview import MultiView
from supcon_tf.views.patches import ColorDrop, cut_patches, patch_grid
from supcon_tf.views.policies import POLICIES
from supcon_tf.views.randaugment import RandAugment


def get(name, **kwargs):
    """The augmentation policy `name` ("simclr", "cifar", "digits", "randaugment",
    "autoaugment", "eval") built with `kwargs` (e.g. image_size=(32, 32), seed=0)."""
    return POLICIES.get(name, **kwargs)


def names():
    return POLICIES.names()


__all__ = ["AutoAugment", "Augmenter", "CenterCropResize", "ColorDrop", "ColorJitter",
           "Compose", "GaussianBlur", "MultiCrop", "MultiView", "RandAugment", "RandomGrayscale", "RandomResizedCrop",
           "Solarize", "cut_patches", "get", "names", "patch_grid"]
