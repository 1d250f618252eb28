"""SimCLR's Gaussian blur: a per-image sigma, kernel 10% of the image side, probability p.

Keras' `RandomGaussianBlur` draws one sigma for the whole batch; SimCLR draws one
per image (uniform in [0.1, 2.0]), so on a batch on the accelerator the two differ.
This one builds a per-image 1-D kernel and blurs separably by summing shifted
slices of the reflect-padded images: batched, any size, XLA-compatible.
"""

from supcon_tf.registry import register
from supcon_tf.validation import check_probability
from supcon_tf.views.base import Augmenter, check_range


def blur_axis(b, images, weights, radius, axis):
    """Convolves along `axis` (1 or 2) with per-image `weights` [batch, 2 * radius + 1]."""
    pad = [[0, 0]] * 4
    pad[axis] = [radius, radius]
    padded = b.numpy.pad(images, pad, mode="reflect")
    out = 0.0
    taps = 2 * radius + 1
    for i in range(taps):
        end = i - (taps - 1)
        sl = [slice(None)] * 4
        sl[axis] = slice(i, end if end < 0 else None)
        out = out + padded[tuple(sl)] * weights[:, i][:, None, None, None]
    return out


@register
class GaussianBlur(Augmenter):
    """Blur with probability `p`, sigma uniform in `sigma_range` per image.

    The kernel has 2 * radius + 1 taps with radius = int(kernel_fraction * side) // 2,
    `side` the image height (as SimCLR: kernel_size = image_size // 10). Images whose
    radius is 0 (below 20 pixels with the defaults) pass through. Padding reflects.
    """

    def __init__(self, p=0.5, sigma_range=(0.1, 2.0), kernel_fraction=0.1, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.p = float(check_probability("p", p))
        self.sigma_range = check_range("sigma_range", sigma_range, 1e-6)
        self.kernel_fraction = float(check_probability("kernel_fraction", kernel_fraction))

    def radius(self, side):
        return int(self.kernel_fraction * side) // 2

    def augment(self, images, training):
        side = images.shape[1]
        if not training or self.p == 0 or side is None or self.radius(side) == 0:
            return images
        b = self.backend
        radius = self.radius(side)
        batch = b.shape(images)[0]
        sigma = self.uniform((batch,), *self.sigma_range)
        x = b.numpy.arange(-radius, radius + 1, dtype="float32")
        weights = b.numpy.exp(-(x[None, :] ** 2) / (2.0 * sigma[:, None] ** 2))
        weights = weights / b.numpy.sum(weights, axis=1, keepdims=True)
        blurred = blur_axis(b, blur_axis(b, images, weights, radius, 1), weights, radius, 2)
        apply = self.uniform((batch,)) < self.p
        return b.numpy.where(apply[:, None, None, None], blurred, images)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, sigma_range=self.sigma_range,
                      kernel_fraction=self.kernel_fraction)
        return config
