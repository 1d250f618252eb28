"""Vision Transformers (Dosovitskiy et al., ICLR 2021), DINO's backbone: ViT-Tiny and ViT-Small.

Built from Keras 3 layers after the official DINO `vision_transformer.py`: a strided
convolution embeds `patch_size` x `patch_size` patches, a learned CLS token and
learned position embeddings are added, then pre-norm blocks (LayerNorm eps 1e-6,
multi-head self-attention with biases, an MLP of `mlp_ratio` x width with GELU) and a
final LayerNorm; the encoder outputs the CLS token [batch, dim].

One encoder takes every crop size of a multi-crop batch: the position embeddings are
learned for the grid of `image_size` (default: `input_shape`, else 224 x 224) and
resized bicubically to the grid of the crop at call time (DINO's
`interpolate_pos_encoding`; Keras' bicubic kernel is Keys' a = -0.5 where PyTorch's is
a = -0.75, and the size is given exactly instead of DINO's `scale_factor` with its
+0.1 offset). A crop whose sides `patch_size` does not divide is refused by name
(a strided convolution would drop the rest silently). Stochastic depth (DINO's
`drop_path_rate` 0.1) is not implemented.
"""

import math

import keras
from keras import layers, ops

from supcon_tf.registry import register
from supcon_tf.validation import check_image_shape, check_int, check_number

VARIANTS = {"vit_tiny": dict(dim=192, depth=12, num_heads=3),
            "vit_small": dict(dim=384, depth=12, num_heads=6)}


def _init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@register
class PatchEmbedding(keras.layers.Layer):
    """images [b, H, W, C] -> patch features [b, H / p, W / p, dim]; H, W multiples of p."""

    def __init__(self, patch_size, dim, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = check_int("patch_size", patch_size, minimum=1)
        self.dim = check_int("dim", dim, minimum=1)
        self.proj = layers.Conv2D(self.dim, self.patch_size, strides=self.patch_size,
                                  padding="valid", name="proj", dtype=self.dtype_policy)

    def check_size(self, shape):
        sides = [s for s in tuple(shape)[-3:-1] if s is not None]
        if any(s % self.patch_size for s in sides):
            raise ValueError(
                f"`patch_size` ({self.patch_size}) must divide the height and width of every "
                f"crop the ViT encodes; received images of shape {tuple(shape)}. Use crop "
                f"sizes that are multiples of {self.patch_size} (views.image_size, "
                f"views.multicrop.local_size) or another patch_size.")

    def build(self, input_shape):
        self.check_size(input_shape)
        self.proj.build(input_shape)

    def call(self, images):
        self.check_size(images.shape)
        return self.proj(images)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        p = self.patch_size
        return (b, None if h is None else h // p, None if w is None else w // p, self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(patch_size=self.patch_size, dim=self.dim)
        return config


@register
class PatchPositions(keras.layers.Layer):
    """patches [b, h, w, d] -> tokens [b, 1 + h w, d]: a CLS token first, position
    embeddings (learned for `grid_size`, resized bicubically to h x w) added."""

    def __init__(self, grid_size, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = tuple(check_int(f"grid_size[{i}]", g, minimum=1)
                               for i, g in enumerate(grid_size))

    def build(self, input_shape):
        d = input_shape[-1]
        gh, gw = self.grid_size
        self.cls_token = self.add_weight(shape=(1, 1, d), initializer=_init(), name="cls_token")
        self.position = self.add_weight(shape=(1, 1 + gh * gw, d), initializer=_init(),
                                        name="position")

    def grid_embeddings(self, height, width):
        """The patch position embeddings [1, height x width, d] for a grid of that size."""
        d = self.position.shape[-1]
        gh, gw = self.grid_size
        grid = ops.reshape(self.position[:, 1:], (1, gh, gw, d))
        if (height, width) != (gh, gw):  # DINO's interpolate_pos_encoding.
            grid = ops.image.resize(grid, (height, width), interpolation="bicubic")
        return ops.reshape(grid, (1, -1, d))

    def call(self, patches):
        shape = ops.shape(patches)
        height, width, d = patches.shape[1], patches.shape[2], patches.shape[3]
        height = shape[1] if height is None else height
        width = shape[2] if width is None else width
        tokens = ops.reshape(patches, (shape[0], -1, d))
        tokens = tokens + ops.cast(self.grid_embeddings(height, width), tokens.dtype)
        cls = ops.cast(self.cls_token + self.position[:, :1], tokens.dtype)
        cls = ops.broadcast_to(cls, (shape[0], 1, d))
        return ops.concatenate([cls, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        b, h, w, d = input_shape
        return (b, None if h is None or w is None else 1 + h * w, d)

    def get_config(self):
        config = super().get_config()
        config["grid_size"] = self.grid_size
        return config


@register
class ViTBlock(keras.layers.Layer):
    """Pre-norm block: x + MHSA(LN(x)), then x + MLP(LN(x)) (GELU, `mlp_ratio` x dim)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_int("dim", dim, minimum=1)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        if self.dim % self.num_heads:
            raise ValueError(f"`num_heads` ({self.num_heads}) must divide `dim` ({self.dim}); "
                             f"received dim={dim!r}, num_heads={num_heads!r}.")
        self.mlp_ratio = check_number("mlp_ratio", mlp_ratio)
        hidden = max(1, int(round(self.dim * self.mlp_ratio)))
        policy = dict(dtype=self.dtype_policy)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1", **policy)
        self.attn = layers.MultiHeadAttention(self.num_heads, self.dim // self.num_heads,
                                              kernel_initializer=_init(), name="attn",
                                              **policy)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2", **policy)
        self.fc1 = layers.Dense(hidden, activation="gelu", kernel_initializer=_init(),
                                name="fc1", **policy)
        self.fc2 = layers.Dense(self.dim, kernel_initializer=_init(), name="fc2", **policy)

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attn.build(input_shape, input_shape)
        self.norm2.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build(tuple(input_shape[:-1]) + (self.fc1.units,))

    def call(self, x, training=False):
        h = self.norm1(x)
        x = x + self.attn(h, h, training=training)
        return x + self.fc2(self.fc1(self.norm2(x)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(dim=self.dim, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio)
        return config


@register
class ClassToken(keras.layers.Layer):
    """tokens [b, n, d] -> the CLS token [b, d] (the first)."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def vit(variant, input_shape=(224, 224, 3), patch_size=16, image_size=None, dim=None,
        depth=None, num_heads=None, mlp_ratio=4.0, name=None):
    """A ViT of `variant` ("vit_tiny": width 192, 12 blocks, 3 heads; "vit_small": 384,
    12, 6); `dim` / `depth` / `num_heads` override the variant's (e.g. a 2-block ViT
    for 8x8 digits). `input_shape` may leave height and width None (multi-crop);
    `image_size` (H, W) is the size the position embeddings are learned at."""
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {', '.join(map(repr, VARIANTS))}; "
                         f"received variant={variant!r}.")
    input_shape = check_image_shape("input_shape", input_shape)
    patch_size = check_int("patch_size", patch_size, minimum=1)
    spec = dict(VARIANTS[variant])
    for key, value in (("dim", dim), ("depth", depth), ("num_heads", num_heads)):
        if value is not None:
            spec[key] = check_int(key, value, minimum=1)
    if image_size is None:
        image_size = input_shape[:2] if None not in input_shape[:2] else (224, 224)
    image_size = tuple(check_int(f"image_size[{i}]", s, minimum=1)
                       for i, s in enumerate(image_size))
    if len(image_size) != 2 or any(s % patch_size for s in image_size):
        raise ValueError(f"`image_size` must be (height, width), multiples of `patch_size` "
                         f"({patch_size}); received image_size={image_size!r}.")
    embed = PatchEmbedding(patch_size, spec["dim"], name="patch_embed")
    embed.check_size((None, *input_shape))
    inputs = keras.Input(shape=input_shape, name="images")
    x = PatchPositions(tuple(math.floor(s / patch_size) for s in image_size),
                       name="positions")(embed(inputs))
    for i in range(spec["depth"]):
        x = ViTBlock(spec["dim"], spec["num_heads"], mlp_ratio, name=f"block{i}")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    return keras.Model(inputs, ClassToken(name="cls")(x), name=name or variant)
