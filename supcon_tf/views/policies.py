"""Named augmentation recipes: SimCLR, its CIFAR variant, digits, RandAugment, AutoAugment, eval.

Each factory returns a `Compose` of augmenters; `views.get(name, image_size=...)`
builds one by name. With `seed`, stage k is seeded `seed + k`, so a policy is
reproducible as a whole.
"""

import keras

from supcon_tf.registry import Registry
from supcon_tf.views.autoaugment import AutoAugment
from supcon_tf.views.base import Compose, check_size
from supcon_tf.views.blur import GaussianBlur
from supcon_tf.views.color import ColorJitter, RandomGrayscale, Solarize
from supcon_tf.views.crop import CenterCropResize, RandomResizedCrop
from supcon_tf.views.randaugment import RandAugment

POLICIES = Registry("augmentation policy")


def _seeds(seed):
    count = [0]

    def next_seed():
        count[0] += 1
        return None if seed is None else seed + count[0] - 1

    return next_seed


def _flip(seed):
    return keras.layers.RandomFlip("horizontal", seed=seed)


@POLICIES.register("simclr")
def simclr(image_size=(224, 224), strength=1.0, area_range=(0.08, 1.0),
           aspect_range=(3 / 4, 4 / 3), flip=True, jitter_p=0.8,
           brightness_mode="multiplicative", grayscale_p=0.2, blur=None, blur_p=0.5,
           solarize_p=0.0, allow_upsample=False, seed=None):
    """SimCLR (Chen et al. 2020, appendix A): crop, flip, colour jitter, grayscale, blur.

    `blur=None` turns the blur on for images of 64 pixels or more (the paper leaves it
    off for CIFAR's 32x32); `solarize_p` > 0 adds SimCLR v2 / BYOL solarization.
    """
    size = check_size("image_size", image_size)
    s = _seeds(seed)
    stages = [RandomResizedCrop(size, area_range, aspect_range, allow_upsample=allow_upsample,
                                seed=s())]
    if flip:
        stages.append(_flip(s()))
    stages.append(ColorJitter.from_strength(strength, p=jitter_p,
                                            brightness_mode=brightness_mode, seed=s()))
    stages.append(RandomGrayscale(grayscale_p, seed=s()))
    if blur if blur is not None else min(size) >= 64:
        stages.append(GaussianBlur(blur_p, seed=s()))
    if solarize_p > 0:
        stages.append(Solarize(solarize_p, seed=s()))
    return Compose(stages, seed=seed, name="simclr")


@POLICIES.register("cifar")
def cifar(image_size=(32, 32), strength=0.5, area_range=(0.08, 1.0), **kwargs):
    """SimCLR's CIFAR-10 recipe (appendix B.9): strength 0.5, no blur.

    SupCon's reference PyTorch code uses the same jitter (0.4, 0.4, 0.4, 0.1) with a
    larger minimum crop: `views.get("cifar", area_range=(0.2, 1.0))`.
    """
    kwargs.setdefault("blur", False)
    return simclr(image_size, strength=strength, area_range=area_range, **kwargs)


@POLICIES.register("digits")
def digits(image_size=(8, 8), area_range=(0.5, 1.0), aspect_range=(3 / 4, 4 / 3),
           brightness=0.4, contrast=0.4, jitter_p=0.8, allow_upsample=False, seed=None):
    """For 8x8 grayscale digits: a milder crop (>= 50% of the area), brightness and
    contrast jitter; no flip (digits are not mirror-symmetric), no hue or saturation."""
    size = check_size("image_size", image_size)
    s = _seeds(seed)
    return Compose([
        RandomResizedCrop(size, area_range, aspect_range, allow_upsample=allow_upsample,
                          seed=s()),
        ColorJitter(brightness, contrast, 0.0, 0.0, p=jitter_p, seed=s()),
    ], seed=seed, name="digits")


@POLICIES.register("randaugment")
def randaugment(image_size=(224, 224), num_ops=2, magnitude=0.5, area_range=(0.08, 1.0),
                flip=True, allow_upsample=False, seed=None):
    """SupCon's RandAugment recipe: random resized crop, flip, then RandAugment.

    `magnitude` is Keras' `factor` (0-1; each op's strength is drawn up to it).
    """
    size = check_size("image_size", image_size)
    s = _seeds(seed)
    stages = [RandomResizedCrop(size, area_range, allow_upsample=allow_upsample, seed=s())]
    if flip:
        stages.append(_flip(s()))
    stages.append(RandAugment(value_range=(0, 1), num_ops=num_ops, factor=magnitude, seed=s()))
    return Compose(stages, seed=seed, name="randaugment")


@POLICIES.register("autoaugment")
def autoaugment(image_size=(224, 224), area_range=(0.08, 1.0), flip=True,
                allow_upsample=False, seed=None):
    """SupCon's AutoAugment recipe: random resized crop, flip, AutoAugment's ImageNet policy."""
    size = check_size("image_size", image_size)
    s = _seeds(seed)
    stages = [RandomResizedCrop(size, area_range, allow_upsample=allow_upsample, seed=s())]
    if flip:
        stages.append(_flip(s()))
    stages.append(AutoAugment(seed=s()))
    return Compose(stages, seed=seed, name="autoaugment")


@POLICIES.register("eval")
def evaluation(image_size=(224, 224), crop_fraction=1.0, mean=None, std=None, seed=None):
    """Linear-evaluation transform: centre crop (`crop_fraction`), resize, optional normalize."""
    return Compose([CenterCropResize(image_size, crop_fraction, mean=mean, std=std)],
                   seed=seed, name="eval")
