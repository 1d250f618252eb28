"""CPC's context network: an autoregressive (PixelCNN-style) ResNet over a grid of features.

Every convolution is causal along the rows: the context at row i sees the features of
rows <= i and nothing below, so predicting row i + k (k >= 1) from it is a real
prediction. A masked convolution (PixelCNN's, the rows below the centre zeroed) is
written here as a convolution over the rows above only (the grid padded at the top),
the same receptive field without a mask. LayerNorm instead of BatchNorm: batch
statistics would mix patches and leak the rows to predict (Hénaff et al. 2020, Sec. 4.1).
"""

import keras
from keras import layers, ops

from supcon_tf.registry import register
from supcon_tf.validation import check_int


@register
class ContextNetwork(keras.layers.Layer):
    """Features [b, rows, cols, d] -> contexts [b, rows, cols, `width`], causal in the rows.

    A 1x1 input projection, then `num_blocks` bottleneck residual blocks (LayerNorm, ReLU,
    1x1 to `bottleneck`, a row-causal `kernel_size` (rows, cols) convolution, 1x1 back to
    `width`), as CPC v2's context network (appendix A.2) at any size.
    """

    def __init__(self, width=256, bottleneck=None, num_blocks=2, kernel_size=(2, 3), **kwargs):
        super().__init__(**kwargs)
        self.width = check_int("width", width, minimum=1)
        self.bottleneck = check_int("bottleneck", bottleneck if bottleneck is not None
                                    else max(1, self.width // 4), minimum=1)
        self.num_blocks = check_int("num_blocks", num_blocks, minimum=1)
        if not isinstance(kernel_size, (list, tuple)) or len(kernel_size) != 2:
            raise ValueError("`kernel_size` must be (rows, cols); received "
                             f"kernel_size={kernel_size!r}.")
        rows = check_int("kernel_size[0]", kernel_size[0], minimum=1)
        cols = check_int("kernel_size[1]", kernel_size[1], minimum=1)
        if cols % 2 == 0:
            raise ValueError(f"`kernel_size[1]` must be odd (centred on the column); received "
                             f"kernel_size={tuple(kernel_size)!r}.")
        self.kernel_size = (rows, cols)

    def build(self, input_shape):
        self.project = layers.Conv2D(self.width, 1, name="project", dtype=self.dtype_policy)
        self.project.build(input_shape)
        shape = (*input_shape[:-1], self.width)
        self.norms, self.reduces, self.causals, self.expands = [], [], [], []
        for i in range(self.num_blocks):
            norm = layers.LayerNormalization(name=f"norm{i}", dtype=self.dtype_policy)
            reduce = layers.Conv2D(self.bottleneck, 1, name=f"reduce{i}",
                                   dtype=self.dtype_policy)
            causal = layers.Conv2D(self.bottleneck, self.kernel_size, name=f"causal{i}",
                                   dtype=self.dtype_policy)
            expand = layers.Conv2D(self.width, 1, name=f"expand{i}", dtype=self.dtype_policy)
            norm.build(shape)
            reduce.build(shape)
            causal.build((None, None, None, self.bottleneck))
            expand.build((*input_shape[:-1], self.bottleneck))
            self.norms.append(norm)
            self.reduces.append(reduce)
            self.causals.append(causal)
            self.expands.append(expand)

    def _causal_pad(self, x):
        rows, cols = self.kernel_size
        return ops.pad(x, ((0, 0), (rows - 1, 0), (cols // 2, cols // 2), (0, 0)))

    def call(self, features):
        x = self.project(features)
        for norm, reduce, causal, expand in zip(self.norms, self.reduces, self.causals,
                                                self.expands):
            h = reduce(ops.relu(norm(x)))
            h = causal(self._causal_pad(ops.relu(h)))
            x = x + expand(ops.relu(h))
        return x

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.width)

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, bottleneck=self.bottleneck, num_blocks=self.num_blocks,
                      kernel_size=self.kernel_size)
        return config
