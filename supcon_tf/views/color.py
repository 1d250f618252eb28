"""Colour augmenters: SimCLR's colour jitter, random grayscale and solarization.

Keras' `RandomColorJitter` applies its four ops in a fixed order on every image;
SimCLR applies them in a random order per image, the whole jitter with
probability 0.8, and clips to [0, 1] after each op, so the jitter is written here
(the ops themselves are the `tf.image` ones SimCLR calls: per-channel-mean
contrast, saturation and hue in HSV). Grayscale and solarization are a few lines
with a probability and handle 1-channel images, so they live here too.
"""

from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_number, check_positive, check_probability
from supcon_tf.views.base import Augmenter

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale's weights.


def _per_image(x):
    return x[:, None, None, None]


def adjust_brightness(b, images, factor, mode):
    if mode == "multiplicative":
        return b.numpy.clip(images * _per_image(factor), 0.0, 1.0)
    return b.numpy.clip(images + _per_image(factor), 0.0, 1.0)


def adjust_contrast(b, images, factor):
    mean = b.numpy.mean(images, axis=(1, 2), keepdims=True)
    return b.numpy.clip((images - mean) * _per_image(factor) + mean, 0.0, 1.0)


def adjust_saturation(b, images, factor):
    hsv = b.image.rgb_to_hsv(images)
    s = b.numpy.clip(hsv[..., 1:2] * _per_image(factor), 0.0, 1.0)
    return b.numpy.clip(b.image.hsv_to_rgb(b.numpy.concatenate([hsv[..., :1], s, hsv[..., 2:]], -1)),
                        0.0, 1.0)


def adjust_hue(b, images, delta):
    hsv = b.image.rgb_to_hsv(images)
    h = hsv[..., :1] + _per_image(delta)
    h = h - b.numpy.floor(h)
    return b.numpy.clip(b.image.hsv_to_rgb(b.numpy.concatenate([h, hsv[..., 1:]], -1)), 0.0, 1.0)


def to_grayscale(b, images):
    w = b.convert_to_tensor(GRAY_WEIGHTS, dtype="float32")
    gray = b.numpy.sum(images * w, axis=-1, keepdims=True)
    return b.numpy.concatenate([gray, gray, gray], axis=-1)


@register
class ColorJitter(Augmenter):
    """SimCLR colour jitter: brightness, contrast, saturation, hue in a random order per image.

    `ColorJitter.from_strength(s)` gives SimCLR's (0.8s, 0.8s, 0.8s, 0.2s). Factors are
    drawn per image: contrast/saturation uniform in [1-c, 1+c], hue shift uniform in
    [-h, h] of a turn, brightness multiplicative in [max(0, 1-b), 1+b] (SimCLR v2's
    default) or additive in [-b, b] (SimCLR v1's) with `brightness_mode`. The whole
    jitter applies with probability `p`. Saturation and hue leave 1-channel images alone.
    """

    def __init__(self, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=0.8,
                 random_order=True, brightness_mode="multiplicative", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        for name, value in (("brightness", brightness), ("contrast", contrast),
                            ("saturation", saturation)):
            check_positive(name, value, allow_zero=True)
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"`hue` must be in [0, 0.5]; received hue={hue!r}.")
        self.brightness = check_number("brightness", brightness)
        self.contrast = check_number("contrast", contrast)
        self.saturation = check_number("saturation", saturation)
        self.hue = check_number("hue", hue)
        self.p = float(check_probability("p", p))
        self.random_order = bool(random_order)
        self.brightness_mode = check_choice("brightness_mode", brightness_mode,
                                            ("multiplicative", "additive"))

    @classmethod
    def from_strength(cls, strength=1.0, **kwargs):
        check_positive("strength", strength, allow_zero=True)
        s = check_number("strength", strength)
        return cls(brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s, hue=0.2 * s,
                   **kwargs)

    def _factors(self, batch, channels):
        """Per-image draws {op: factor}, for the enabled ops in SimCLR's listed order."""
        factors = {}
        if self.brightness > 0:
            if self.brightness_mode == "multiplicative":
                factors["brightness"] = self.uniform(
                    (batch,), max(0.0, 1 - self.brightness), 1 + self.brightness)
            else:
                factors["brightness"] = self.uniform((batch,), -self.brightness, self.brightness)
        if self.contrast > 0:
            factors["contrast"] = self.uniform((batch,), max(0.0, 1 - self.contrast),
                                               1 + self.contrast)
        if self.saturation > 0 and channels == 3:
            factors["saturation"] = self.uniform((batch,), max(0.0, 1 - self.saturation),
                                                 1 + self.saturation)
        if self.hue > 0 and channels == 3:
            factors["hue"] = self.uniform((batch,), -self.hue, self.hue)
        return factors

    def _step(self, images, factors, active):
        """One jitter step: each image applies the op `active[op]` marks for it.

        Every op runs once on the whole batch with identity parameters (factor 1,
        shift 0) for the images that do not apply it at this step, so a step costs
        one pass of each op (one HSV round trip) rather than one per candidate op.
        """
        b = self.backend
        identity = {"brightness": 1.0 if self.brightness_mode == "multiplicative" else 0.0,
                    "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
        f = {op: b.numpy.where(active[op], factors[op], identity[op]) for op in factors}
        if "brightness" in f:
            images = adjust_brightness(b, images, f["brightness"], self.brightness_mode)
        if "contrast" in f:
            images = adjust_contrast(b, images, f["contrast"])
        if "saturation" in f or "hue" in f:
            hsv = b.image.rgb_to_hsv(images)
            h, s, v = hsv[..., :1], hsv[..., 1:2], hsv[..., 2:]
            if "hue" in f:
                h = h + _per_image(f["hue"])
                h = h - b.numpy.floor(h)
            if "saturation" in f:
                s = b.numpy.clip(s * _per_image(f["saturation"]), 0.0, 1.0)
            rgb = b.image.hsv_to_rgb(b.numpy.concatenate([h, s, v], -1))
            # Images with neither op at this step keep their exact values.
            touched = b.numpy.logical_or(active.get("saturation", False), active.get("hue", False))
            images = b.numpy.where(_per_image(touched), b.numpy.clip(rgb, 0.0, 1.0), images)
        return images

    def augment(self, images, training):
        if not training:
            return images
        b = self.backend
        batch = b.shape(images)[0]
        factors = self._factors(batch, images.shape[-1])
        if not factors:
            return images
        names = list(factors)
        out = images
        if self.random_order and len(names) > 1:
            # order[i, k] = the op image i applies at step k: argsort of uniform noise.
            order = b.numpy.argsort(self.uniform((batch, len(names))), axis=1)
            for k in range(len(names)):
                out = self._step(out, factors, {op: order[:, k] == j for j, op in enumerate(names)})
        else:
            ones = b.numpy.ones((batch,), dtype="bool")
            for op in names:
                out = self._step(out, factors, {o: ones if o == op else ~ones for o in names})
        apply = self.uniform((batch,)) < self.p
        return b.numpy.where(_per_image(apply), out, images)

    def get_config(self):
        config = super().get_config()
        config.update(brightness=self.brightness, contrast=self.contrast,
                      saturation=self.saturation, hue=self.hue, p=self.p,
                      random_order=self.random_order, brightness_mode=self.brightness_mode)
        return config


@register
class RandomGrayscale(Augmenter):
    """Grayscale (kept as 3 channels) with probability `p`; 1-channel images pass through.

    Keras' `RandomGrayscale` does the same on RGB input but rejects 1-channel images,
    which the policies must accept (e.g. MNIST-like data).
    """

    def __init__(self, p=0.2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = float(check_probability("p", p))

    def augment(self, images, training):
        if not training or images.shape[-1] != 3 or self.p == 0:
            return images
        b = self.backend
        apply = self.uniform((b.shape(images)[0],)) < self.p
        return b.numpy.where(_per_image(apply), to_grayscale(b, images), images)

    def get_config(self):
        config = super().get_config()
        config["p"] = self.p
        return config


@register
class Solarize(Augmenter):
    """With probability `p`, pixels >= `threshold` become 1 - pixel (BYOL / SimCLR v2)."""

    def __init__(self, p=0.2, threshold=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = float(check_probability("p", p))
        self.threshold = float(check_probability("threshold", threshold))

    def augment(self, images, training):
        if not training or self.p == 0:
            return images
        b = self.backend
        apply = self.uniform((b.shape(images)[0],)) < self.p
        solarized = b.numpy.where(images >= self.threshold, 1.0 - images, images)
        return b.numpy.where(_per_image(apply), solarized, images)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, threshold=self.threshold)
        return config
