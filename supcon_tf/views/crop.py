"""Crops resampled to a fixed size: SimCLR's random resized crop and the eval centre crop.

Keras' `RandomCrop` takes a fixed-size window and `RandomZoom` keeps the aspect
ratio, neither is the Inception-style crop SimCLR uses (a box covering a random
fraction of the image area with a random log-uniform aspect ratio, resized to the
target size), so it is written here. Boxes have real-valued corners and are
resampled bilinearly with two gathers, one per axis: it works for any input
size, batched on the accelerator (XLA) and per image in `tf.data`.
"""

import math

from supcon_tf.registry import register
from supcon_tf.views.base import Augmenter, check_range, check_size
from supcon_tf.validation import check_int, check_number, check_positive


def crop_resize(b, images, y0, x0, h, w, size):
    """Bilinear resample of the boxes (y0, x0, h, w) [batch] of `images` to `size`.

    Sample i of the output sits at y0 + (i + 0.5) * h / out_h - 0.5 in input pixels,
    clamped into the box: the half-pixel convention of `tf.image.resize`, so an
    integer box gives `tf.image.resize` of the crop. `b` is a Keras backend module.
    """
    shape = b.shape(images)
    in_h = b.cast(shape[1], "float32")
    in_w = b.cast(shape[2], "float32")

    def axis_weights(start, length, out, limit):
        steps = (b.numpy.arange(out, dtype="float32") + 0.5) / out
        pos = start[:, None] + steps[None, :] * length[:, None] - 0.5
        # Clamp into the box (as resizing the cropped image would), then the image.
        pos = b.numpy.minimum(b.numpy.maximum(pos, start[:, None]),
                              b.numpy.maximum(start + length - 1.0, start)[:, None])
        pos = b.numpy.clip(pos, 0.0, limit - 1.0)
        lo = b.numpy.floor(pos)
        frac = pos - lo
        hi = b.numpy.minimum(lo + 1.0, limit - 1.0)
        return b.cast(lo, "int32"), b.cast(hi, "int32"), frac

    y_lo, y_hi, fy = axis_weights(y0, h, size[0], in_h)
    x_lo, x_hi, fx = axis_weights(x0, w, size[1], in_w)
    take = b.numpy.take_along_axis
    top = take(images, y_lo[:, :, None, None], axis=1)
    bottom = take(images, y_hi[:, :, None, None], axis=1)
    rows = top + (bottom - top) * fy[:, :, None, None]
    left = take(rows, x_lo[:, None, :, None], axis=2)
    right = take(rows, x_hi[:, None, :, None], axis=2)
    return left + (right - left) * fx[:, None, :, None]


def _check_fits(layer, input_shape):
    h, w = input_shape[1], input_shape[2]
    if layer.allow_upsample or h is None or w is None:
        return
    if h < layer.size[0] or w < layer.size[1]:
        raise ValueError(
            f"{type(layer).__name__}: the target `size` {layer.size} is larger than the input "
            f"images ({h}, {w}), so it cannot be cropped from them. Pass a `size` (image_size) "
            f"<= ({h}, {w}), or allow_upsample=True to enlarge the crops."
        )


@register
class RandomResizedCrop(Augmenter):
    """A random box of `area_range` x image area and log-uniform `aspect_range`, resized.

    Defaults are SimCLR's (area 0.08-1, aspect 3/4-4/3). Like torchvision, `attempts`
    boxes are drawn per image and the first that fits is kept; if none fits, the
    whole image (its aspect clamped to `aspect_range`) is used. With training=False
    the whole image is resized. A target larger than the images is an error unless
    `allow_upsample=True`.
    """

    def __init__(self, size, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3),
                 attempts=10, allow_upsample=False, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.size = check_size("size", size)
        self.area_range = check_range("area_range", area_range, 0.0, 1.0)
        check_positive("area_range[1]", self.area_range[1])
        self.aspect_range = check_range("aspect_range", aspect_range)
        check_positive("aspect_range[0]", self.aspect_range[0])
        self.attempts = check_int("attempts", attempts, minimum=1)
        self.allow_upsample = bool(allow_upsample)

    def sample_boxes(self, batch, in_h, in_w):
        """(y0, x0, h, w) [batch] in input pixels."""
        b = self.backend
        n = self.attempts
        area = self.uniform((batch, n), *self.area_range) * in_h * in_w
        log_r = self.uniform((batch, n), math.log(self.aspect_range[0]),
                             math.log(self.aspect_range[1]))
        ratio = b.numpy.exp(log_r)
        w = b.numpy.sqrt(area * ratio)
        h = b.numpy.sqrt(area / ratio)
        fits = b.numpy.logical_and(w <= in_w, h <= in_h)
        first = b.numpy.argmax(b.cast(fits, "int32"), axis=1)[:, None]
        any_fit = b.numpy.any(fits, axis=1)
        w = b.numpy.take_along_axis(w, first, axis=1)[:, 0]
        h = b.numpy.take_along_axis(h, first, axis=1)[:, 0]
        # Fallback: the whole image, its aspect ratio clamped into aspect_range.
        in_ratio = in_w / in_h
        lo, hi = self.aspect_range
        fw = b.numpy.where(in_ratio > hi, in_h * hi, in_w)
        fh = b.numpy.where(in_ratio < lo, in_w / lo, in_h)
        w = b.numpy.where(any_fit, w, fw)
        h = b.numpy.where(any_fit, h, fh)
        y0 = self.uniform((batch,)) * (in_h - h)
        x0 = self.uniform((batch,)) * (in_w - w)
        return y0, x0, h, w

    def augment(self, images, training):
        _check_fits(self, tuple(images.shape))
        b = self.backend
        shape = b.shape(images)
        batch = shape[0]
        in_h = b.cast(shape[1], "float32")
        in_w = b.cast(shape[2], "float32")
        if training:
            y0, x0, h, w = self.sample_boxes(batch, in_h, in_w)
        else:
            zeros = b.numpy.zeros((batch,), dtype="float32")
            y0, x0, h, w = zeros, zeros, zeros + in_h, zeros + in_w
        return crop_resize(b, images, y0, x0, h, w, self.size)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-3], *self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, area_range=self.area_range,
                      aspect_range=self.aspect_range, attempts=self.attempts,
                      allow_upsample=self.allow_upsample)
        return config


@register
class CenterCropResize(Augmenter):
    """Evaluation transform: a centred box of `crop_fraction` of the image, resized to `size`.

    The box has the target's aspect ratio and covers `crop_fraction` of the image
    along its limiting side (SimCLR's eval crop uses 0.875; 1.0 keeps it whole).
    Optional `mean`/`std` (per channel, on [0, 1] values) normalize the output.
    """

    def __init__(self, size, crop_fraction=1.0, mean=None, std=None, allow_upsample=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.size = check_size("size", size)
        if not 0.0 < crop_fraction <= 1.0:
            raise ValueError(f"`crop_fraction` must be in (0, 1]; received "
                             f"crop_fraction={crop_fraction!r}.")
        self.crop_fraction = check_number("crop_fraction", crop_fraction)
        if (mean is None) != (std is None):
            raise ValueError(f"`mean` and `std` go together; received mean={mean!r}, std={std!r}.")
        self.mean = None if mean is None else [float(m) for m in mean]
        self.std = None if std is None else [float(s) for s in std]
        self.allow_upsample = bool(allow_upsample)

    def augment(self, images, training):
        _check_fits(self, tuple(images.shape))
        b = self.backend
        shape = b.shape(images)
        in_h = b.cast(shape[1], "float32")
        in_w = b.cast(shape[2], "float32")
        target = self.size[1] / self.size[0]
        wide = in_w / in_h > target
        h = b.numpy.where(wide, in_h, in_w / target) * self.crop_fraction
        w = b.numpy.where(wide, in_h * target, in_w) * self.crop_fraction
        ones = b.numpy.ones((shape[0],), dtype="float32")
        y0, x0 = (in_h - h) / 2 * ones, (in_w - w) / 2 * ones
        out = crop_resize(b, images, y0, x0, h * ones, w * ones, self.size)
        if self.mean is not None:
            mean = b.convert_to_tensor(self.mean, dtype="float32")
            std = b.convert_to_tensor(self.std, dtype="float32")
            out = (out - mean) / std
        return out

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-3], *self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, crop_fraction=self.crop_fraction, mean=self.mean,
                      std=self.std, allow_upsample=self.allow_upsample)
        return config
