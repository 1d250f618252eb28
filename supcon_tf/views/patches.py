"""CPC's grid of overlapping patches and its augmentation (Hénaff et al., ICML 2020).

`patch_grid` checks that a grid of `patch_size` patches overlapping by `overlap`
pixels tiles an image exactly; `cut_patches` cuts a batch into that grid with
`keras.ops` slices (on the accelerator, any backend). The "cpc" policy is the
image-level augmentation, "cpc_patches" the per-patch one drawn independently for
every patch (spatial jitter, flip, colour dropping, grayscale), after CPC v2's
appendix and the CIFAR/STL/ImageNet pipelines of its PyTorch Lightning port.
"""

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_probability
from supcon_tf.views.base import Augmenter, Compose, check_range, check_size
from supcon_tf.views.color import ColorJitter, RandomGrayscale
from supcon_tf.views.crop import RandomResizedCrop
from supcon_tf.views.policies import POLICIES, _flip, _seeds


def check_patches(patch_size, overlap):
    """(patch_size, overlap) checked: ints, 0 <= overlap < patch_size."""
    patch = check_int("patch_size", patch_size, minimum=1)
    overlap = check_int("overlap", overlap, minimum=0)
    if overlap >= patch:
        raise ValueError(f"`overlap` must be smaller than `patch_size` ({patch}) so that the "
                         f"patches advance; received overlap={overlap}.")
    return patch, overlap


def patch_grid(image_size, patch_size, overlap):
    """(rows, cols) of the grid of `patch_size` patches overlapping by `overlap` pixels
    (stride patch_size - overlap) that tiles an image of `image_size` (H, W) exactly;
    ValueError naming the parameter that does not fit."""
    height, width = check_size("image_size", image_size)
    patch, overlap = check_patches(patch_size, overlap)
    stride = patch - overlap
    grid = []
    for side, name in ((height, "height"), (width, "width")):
        if patch > side or (side - patch) % stride:
            fits = [s for s in range(patch, side + 1) if (s - patch) % stride == 0]
            raise ValueError(
                f"`patch_size`={patch} with `overlap`={overlap} (stride {stride}) does not tile "
                f"the image {name} of {side} pixels: (size - patch_size) must be a multiple "
                f"of the stride. Image sides it tiles up to {side}: {fits or 'none'}; or "
                f"choose patch_size and overlap with {side} = patch_size + n * stride.")
        grid.append((side - patch) // stride + 1)
    if min(grid) < 2:
        raise ValueError(f"`patch_size`={patch} with `overlap`={overlap} leaves a grid of "
                         f"{grid[0]}x{grid[1]} patches on images of {height}x{width}: CPC "
                         "predicts rows below from rows above, so it needs at least 2 rows "
                         "and 2 columns.")
    return tuple(grid)


def cut_patches(images, patch_size, overlap):
    """Images [b, H, W, C] -> patches [b, rows, cols, patch_size, patch_size, C], row-major."""
    rows, cols = patch_grid(tuple(images.shape[1:3]), patch_size, overlap)
    stride = patch_size - overlap
    grid = [ops.stack([images[:, r * stride:r * stride + patch_size,
                              c * stride:c * stride + patch_size] for c in range(cols)], 1)
            for r in range(rows)]
    return ops.stack(grid, 1)


@register
class ColorDrop(Augmenter):
    """CPC v2's colour dropping: with probability `p`, two of an RGB image's three channels,
    chosen at random, are set to 0 (one channel kept); other images pass through."""

    def __init__(self, p=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = float(check_probability("p", p))

    def augment(self, images, training):
        if not training or images.shape[-1] != 3 or self.p == 0:
            return images
        b = self.backend
        batch = b.shape(images)[0]
        keep = b.cast(self.uniform((batch,)) * 3.0, "int32")  # The channel kept.
        mask = b.nn.one_hot(b.numpy.minimum(keep, 2), 3)
        apply = b.cast(self.uniform((batch,)) < self.p, "float32")[:, None]
        mask = apply * mask + (1.0 - apply)
        return images * mask[:, None, None, :]

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


def _cpc_stages(size, area_range, aspect_range, flip, translate, jitter_p, jitter,
                grayscale_p, allow_upsample, seed):
    s = _seeds(seed)
    stages = [RandomResizedCrop(size, area_range, aspect_range, allow_upsample=allow_upsample,
                                seed=s())]
    if flip:
        stages.append(_flip(s()))
    if translate:  # AMDIM's and CPC's CIFAR jitter: a shift of up to `translate` pixels.
        stages.append(keras.layers.RandomTranslation(
            translate / size[0], translate / size[1], fill_mode="reflect", seed=s()))
    stages.append(ColorJitter(*jitter, p=jitter_p, seed=s()))
    stages.append(RandomGrayscale(grayscale_p, seed=s()))
    return stages


@POLICIES.register("cpc")
def cpc(image_size=(224, 224), area_range=(0.3, 1.0), aspect_range=(0.7, 1.4), flip=True,
        jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.25,
        allow_upsample=False, seed=None):
    """CPC's image-level augmentation, before the grid is cut (the Lightning port's
    ImageNet/STL-10 pipeline): a random resized crop of 30-100% of the area, a flip,
    colour jitter (0.4, 0.4, 0.4, 0.1) with p=0.8 and grayscale with p=0.25."""
    size = check_size("image_size", image_size)
    return Compose(_cpc_stages(size, area_range, aspect_range, flip, 0, jitter_p,
                               (brightness, contrast, saturation, hue), grayscale_p,
                               allow_upsample, seed), seed=seed, name="cpc")


@POLICIES.register("yadim")
def yadim(image_size=(224, 224), area_range=(0.3, 1.0), aspect_range=(0.7, 1.4), flip=True,
          translate=4, jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2,
          grayscale_p=0.25, allow_upsample=False, seed=None):
    """YADIM's views (Falcon & Cho 2020): CPC's and AMDIM's pipelines merged: a random
    resized crop (30-100% of the area), a flip, a reflected shift of up to `translate`
    pixels, colour jitter (0.4, 0.4, 0.4, 0.2) with p=0.8 and grayscale with p=0.25."""
    size = check_size("image_size", image_size)
    translate = check_int("translate", translate, minimum=0)
    return Compose(_cpc_stages(size, area_range, aspect_range, flip, translate, jitter_p,
                               (brightness, contrast, saturation, hue), grayscale_p,
                               allow_upsample, seed), seed=seed, name="yadim")


@POLICIES.register("cpc_patches")
def cpc_patches(image_size=(64, 64), area_range=(0.6, 1.0), flip=True, color_drop_p=1.0,
                grayscale_p=0.0, seed=None):
    """CPC v2's per-patch augmentation (appendix A): each patch cropped at random (spatial
    jitter: `area_range` of it, resized back to `image_size`, the patch size), flipped,
    and colour-dropped (two of three RGB channels zeroed, `color_drop_p`)."""
    size = check_size("image_size", image_size)
    check_range("area_range", area_range, 0.0, 1.0)
    s = _seeds(seed)
    stages = [RandomResizedCrop(size, area_range, (1.0, 1.0), seed=s())]
    if flip:
        stages.append(_flip(s()))
    stages.append(ColorDrop(color_drop_p, seed=s()))
    stages.append(RandomGrayscale(grayscale_p, seed=s()))
    return Compose(stages, seed=seed, name="cpc_patches")
