"""AutoAugment (Cubuk et al. 2019), the ImageNet policy, batched with a sub-policy per image.

Keras has no AutoAugment. Each image draws one of the 25 sub-policies, each a pair
of (op, probability, magnitude bin 0-9); the ops are PIL's, on [0, 1] floats, and
the magnitude scales follow the usual 10-bin tables (shear 0.3, rotation 30 deg,
enhance factors 1 +- 0.9, posterize 8-4 bits, solarize threshold 1-0). Every op is
computed on the whole batch and selected per image, so the layer stays static-shaped
for XLA. Geometric ops resample bilinearly with black fill.
"""

import math

from supcon_tf.registry import register
from supcon_tf.views.base import Augmenter
from supcon_tf.views.color import GRAY_WEIGHTS

OPS = ("shear_x", "rotate", "color", "contrast", "sharpness", "posterize", "solarize",
       "autocontrast", "equalize", "invert")

IMAGENET_POLICY = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("equalize", 0.4, 4), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, 7)),
    (("posterize", 0.8, 5), ("equalize", 1.0, 2)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, 8), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, 2)),
    (("equalize", 0.0, 7), ("equalize", 0.8, 8)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, 8)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, 9)),
    (("color", 0.4, 0), ("equalize", 0.6, 3)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
)


def _img(x):
    return x[:, None, None, None]


def _gray(b, images):
    if images.shape[-1] != 3:
        return images
    w = b.convert_to_tensor(GRAY_WEIGHTS, dtype="float32")
    return b.numpy.sum(images * w, axis=-1, keepdims=True)


def blend(b, degenerate, images, factor):
    """PIL's ImageEnhance: degenerate + factor * (image - degenerate), clipped."""
    return b.numpy.clip(degenerate + _img(factor) * (images - degenerate), 0.0, 1.0)


def affine(b, images, angle, shear):
    """Rotation by `angle` (radians) and x-shear about the centre, per image; black fill."""
    shape = b.shape(images)
    h, w = images.shape[1], images.shape[2]
    batch = shape[0]
    ys, xs = b.numpy.meshgrid(b.numpy.arange(h, dtype="float32") - (h - 1) / 2,
                              b.numpy.arange(w, dtype="float32") - (w - 1) / 2, indexing="ij")
    ys, xs = ys[None], xs[None]
    cos, sin = _img(b.numpy.cos(angle))[..., 0], _img(b.numpy.sin(angle))[..., 0]
    src_x = cos * xs - sin * ys + _img(shear)[..., 0] * ys + (w - 1) / 2
    src_y = sin * xs + cos * ys + (h - 1) / 2
    flat = b.numpy.reshape(images, (batch, h * w, images.shape[-1]))
    x0, y0 = b.numpy.floor(src_x), b.numpy.floor(src_y)
    out = 0.0
    for dy in (0.0, 1.0):
        for dx in (0.0, 1.0):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - b.numpy.abs(src_x - xi)) * (1 - b.numpy.abs(src_y - yi))
            inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            index = b.cast(b.numpy.clip(yi, 0, h - 1) * w + b.numpy.clip(xi, 0, w - 1), "int32")
            index = b.numpy.reshape(index, (batch, h * w, 1))
            values = b.numpy.take_along_axis(flat, index, axis=1)
            weight = b.numpy.where(inside, weight, 0.0)
            out = out + values * b.numpy.reshape(weight, (batch, h * w, 1))
    return b.numpy.reshape(out, shape)


def sharpness_degenerate(b, images):
    """PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]] / 13 inside, original on the border."""
    h, w = images.shape[1], images.shape[2]
    padded = b.numpy.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    smooth = 4.0 * images
    for dy in range(3):
        for dx in range(3):
            smooth = smooth + padded[:, dy:dy + h, dx:dx + w]
    smooth = smooth / 13.0
    ys = b.numpy.arange(h)[:, None]
    xs = b.numpy.arange(w)[None, :]
    interior = (ys > 0) & (ys < h - 1) & (xs > 0) & (xs < w - 1)
    return b.numpy.where(interior[None, :, :, None], smooth, images)


def autocontrast(b, images):
    lo = b.numpy.min(images, axis=(1, 2), keepdims=True)
    hi = b.numpy.max(images, axis=(1, 2), keepdims=True)
    scale = b.numpy.where(hi > lo, 1.0 / b.numpy.maximum(hi - lo, 1e-8), 1.0)
    offset = b.numpy.where(hi > lo, lo, 0.0)
    return b.numpy.clip((images - offset) * scale, 0.0, 1.0)


def equalize(b, images):
    """PIL's histogram equalization per image and channel, on 256 levels."""
    shape = b.shape(images)
    batch, c = shape[0], images.shape[-1]
    n = images.shape[1] * images.shape[2]
    v = b.cast(b.numpy.round(images * 255.0), "int32")
    v = b.numpy.reshape(b.numpy.transpose(v, (0, 3, 1, 2)), (-1, n))           # [b*c, n]
    rows = b.numpy.reshape(b.numpy.arange(batch * c, dtype="int32"), (-1, 1)) * 256
    flat = b.numpy.reshape(v + rows, (-1, 1))
    ones = b.numpy.ones_like(flat[:, 0], dtype="float32")
    hist = b.core.scatter(flat, ones, (batch * c * 256,))
    hist = b.numpy.reshape(hist, (-1, 256))                                     # [b*c, 256]
    levels = b.numpy.arange(256, dtype="int32")[None, :]
    last = b.numpy.max(b.numpy.where(hist > 0, levels, 0), axis=1, keepdims=True)
    last_count = b.numpy.take_along_axis(hist, last, axis=1)
    step = b.numpy.floor((n - last_count) / 255.0)
    cum = b.numpy.cumsum(hist, axis=1) - hist
    lut = b.numpy.minimum(b.numpy.floor((cum + b.numpy.floor(step / 2)) / b.numpy.maximum(step, 1.0)),
                          255.0)
    mapped = b.numpy.take_along_axis(lut, v, axis=1)
    mapped = b.numpy.where(step > 0, mapped, b.cast(v, "float32"))
    mapped = b.numpy.transpose(b.numpy.reshape(mapped, (-1, c, images.shape[1], images.shape[2])),
                               (0, 2, 3, 1))
    return mapped / 255.0


@register
class AutoAugment(Augmenter):
    """AutoAugment's ImageNet policy on images in [0, 1] (statically sized)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)

    def _table(self, column, field):
        b = self.backend
        if field == 0:
            values = [OPS.index(sub[column][0]) for sub in IMAGENET_POLICY]
            return b.convert_to_tensor(values, dtype="int32")
        return b.convert_to_tensor([float(sub[column][field]) for sub in IMAGENET_POLICY],
                                   dtype="float32")

    def augment(self, images, training):
        if not training:
            return images
        b = self.backend
        batch = b.shape(images)[0]
        policy = b.random.randint((batch,), 0, len(IMAGENET_POLICY), seed=self.seed_generator())
        for column in (0, 1):
            op = b.numpy.take(self._table(column, 0), policy)
            prob = b.numpy.take(self._table(column, 1), policy)
            level = b.numpy.take(self._table(column, 2), policy) / 9.0
            apply = self.uniform((batch,)) < prob
            sign = b.numpy.where(self.uniform((batch,)) < 0.5, -1.0, 1.0)
            is_op = {name: apply & (op == i) for i, name in enumerate(OPS)}
            angle = b.numpy.where(is_op["rotate"], sign * level * math.radians(30.0), 0.0)
            shear = b.numpy.where(is_op["shear_x"], sign * level * 0.3, 0.0)
            geometric = is_op["rotate"] | is_op["shear_x"]
            images = b.numpy.where(_img(geometric), affine(b, images, angle, shear), images)
            factor = 1.0 + sign * level * 0.9
            bits = 8.0 - b.numpy.round(level * 9.0 / 2.25)
            div = _img(2.0 ** (8.0 - bits))
            candidates = {
                "color": lambda x: blend(b, _gray(b, x), x, factor),
                "contrast": lambda x: blend(
                    b, b.numpy.mean(_gray(b, x), axis=(1, 2, 3), keepdims=True), x, factor),
                "sharpness": lambda x: blend(b, sharpness_degenerate(b, x), x, factor),
                "posterize": lambda x: b.numpy.floor(b.numpy.round(x * 255.0) / div) * div / 255.0,
                "solarize": lambda x: b.numpy.where(x >= _img(1.0 - level), 1.0 - x, x),
                "autocontrast": lambda x: autocontrast(b, x),
                "equalize": lambda x: equalize(b, x),
                "invert": lambda x: 1.0 - x,
            }
            for name, fn in candidates.items():
                images = b.numpy.where(_img(is_op[name]), fn(images), images)
        return images
