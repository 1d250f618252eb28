"""A small Transformer text encoder (CLIP's text tower): token ids -> one vector per caption.

Pre-LayerNorm blocks (attention, then a GELU MLP) over learned token and position
embeddings, as in CLIP (Radford et al. 2021, Sec. 2.4) at a size the digits demo trains on
a CPU. `pooling="end"` takes the end-of-text token's output under a causal mask (CLIP's
choice); `pooling="mean"` averages the non-padding positions (bidirectional attention).
"""

import keras
from keras import layers, ops

from supcon_tf.registry import register
from supcon_tf.text.tokenizer import PAD
from supcon_tf.validation import check_choice, check_int

POOLINGS = ("end", "mean")


@register
class TransformerBlock(keras.layers.Layer):
    """x + attention(LN(x)), then x + MLP(LN(x)); `attention_mask` [b, T, T]: who sees whom."""

    def __init__(self, width, num_heads, mlp_ratio=4, **kwargs):
        super().__init__(**kwargs)
        self.width = check_int("width", width, minimum=1)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.mlp_ratio = check_int("mlp_ratio", mlp_ratio, minimum=1)
        if self.width % self.num_heads:
            raise ValueError(f"`width` ({self.width}) must be a multiple of `num_heads` "
                             f"({self.num_heads}).")
        policy = self.dtype_policy
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="norm1")
        self.attention = layers.MultiHeadAttention(self.num_heads, self.width // self.num_heads,
                                                   dtype=policy, name="attention")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="norm2")
        self.fc1 = layers.Dense(self.width * self.mlp_ratio, activation="gelu", dtype=policy,
                                name="fc1")
        self.fc2 = layers.Dense(self.width, dtype=policy, name="fc2")

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm2.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], self.width * self.mlp_ratio))
        self.built = True

    def call(self, x, attention_mask=None, training=False):
        h = self.norm1(x)
        x = x + self.attention(h, h, attention_mask=attention_mask, training=training)
        return x + self.fc2(self.fc1(self.norm2(x)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_heads=self.num_heads, mlp_ratio=self.mlp_ratio)
        return config


@register
class TextTransformer(keras.layers.Layer):
    """Token ids [batch, context_length] (0 = padding, each caption ending with its end
    token) -> features [batch, width]."""

    def __init__(self, vocab_size, context_length=16, width=64, num_layers=2, num_heads=4,
                 mlp_ratio=4, pooling="end", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=5)
        self.context_length = check_int("context_length", context_length, minimum=3)
        self.width = check_int("width", width, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=0)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.mlp_ratio = check_int("mlp_ratio", mlp_ratio, minimum=1)
        self.pooling = check_choice("pooling", pooling, POOLINGS)
        policy = self.dtype_policy
        self.token_embedding = layers.Embedding(
            self.vocab_size, self.width, dtype=policy, name="token_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02))
        self.blocks = [TransformerBlock(self.width, self.num_heads, self.mlp_ratio,
                                        dtype=policy, name=f"block{i}")
                       for i in range(self.num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, dtype=policy,
                                                    name="final_norm")

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding = self.add_weight(
            shape=(self.context_length, self.width), name="position_embedding",
            initializer=keras.initializers.RandomNormal(stddev=0.01))
        shape = (*input_shape, self.width)
        for block in self.blocks:
            block.build(shape)
        self.final_norm.build(shape)
        self.built = True

    def call(self, tokens, training=False):
        if tokens.shape[-1] is not None and tokens.shape[-1] != self.context_length:
            raise ValueError(f"`tokens` must have shape [batch, context_length="
                             f"{self.context_length}]; received shape {tuple(tokens.shape)}.")
        tokens = ops.cast(tokens, "int32")
        present = ops.not_equal(tokens, PAD)  # [b, T]
        x = self.token_embedding(tokens) + ops.cast(self.position_embedding, self.compute_dtype)
        mask = ops.logical_and(ops.expand_dims(present, 1), ops.expand_dims(present, 2))
        if self.pooling == "end":  # Causal: a position sees itself and those before it.
            causal = ops.greater_equal(ops.expand_dims(ops.arange(self.context_length), 1),
                                       ops.expand_dims(ops.arange(self.context_length), 0))
            mask = ops.logical_and(mask, ops.expand_dims(causal, 0))
        # A padding row sees only itself (every row keeps one key: no 0/0 in the softmax).
        mask = ops.logical_or(mask, ops.expand_dims(ops.eye(self.context_length, dtype="bool"), 0))
        for block in self.blocks:
            x = block(x, attention_mask=mask, training=training)
        x = self.final_norm(x)
        weights = ops.cast(present, x.dtype)
        if self.pooling == "end":  # The last present token: the end token.
            last = ops.sum(ops.cast(present, "int32"), axis=1) - 1
            weights = ops.one_hot(last, self.context_length, dtype=x.dtype)
        else:
            weights = weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        return ops.einsum("bt,btd->bd", weights, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, context_length=self.context_length,
                      width=self.width, num_layers=self.num_layers, num_heads=self.num_heads,
                      mlp_ratio=self.mlp_ratio, pooling=self.pooling)
        return config
