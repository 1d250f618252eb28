"""CLIP (Radford et al., ICML 2021) and SigLIP (Zhai et al., ICCV 2023): an image tower and
a text tower trained to agree on image-caption pairs.

Batches are `({"images": [b, H, W, C], "tokens": [b, L]}, labels or None)`: tokens come from
`supcon_tf.text.WordTokenizer` in `tf.data` on the host. Labels are only for an online
probe; pairs are their own positives. `model(images)` is the image representation, the one
the linear probe and kNN evaluate.
"""

import copy

import keras

from supcon_tf.heads import ProjectionHead
from supcon_tf.heads.logit_scale import LogitScale
from supcon_tf.losses import CLIPLoss, SigLIPLoss
from supcon_tf.methods.base import ContrastiveModel, unpack_batch
from supcon_tf.methods.guards import check_arrays
from supcon_tf.registry import register, unknown_name_error
from supcon_tf.text import TextTransformer, WordTokenizer

LOSSES = {"clip": CLIPLoss, "siglip": SigLIPLoss}
INPUT_KEYS = ("images", "tokens")


def image_text_loss(loss):
    """A `CLIPLoss` / `SigLIPLoss` from a name ("clip", "siglip"), an instance or None."""
    if loss is None:
        return CLIPLoss()
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise unknown_name_error("loss", loss, LOSSES)
        return LOSSES[loss]()
    if not isinstance(loss, CLIPLoss):
        raise ValueError("`loss` of the CLIP method must be 'clip', 'siglip', a CLIPLoss or a "
                         f"SigLIPLoss; received {type(loss).__name__}.")
    return loss


def _linear_head(output_dim):
    return ProjectionHead(hidden_dims=(), output_dim=output_dim)


def check_pairs(x, where="x"):
    """Checks an image-text batch: a dict with `images` [b, H, W, C] and `tokens` [b, L]."""
    if not isinstance(x, dict) or sorted(x) != sorted(INPUT_KEYS):
        got = sorted(x) if isinstance(x, dict) else type(x).__name__
        raise ValueError(f"`{where}` of the CLIP method must be a dict with keys 'images' "
                         f"[batch, H, W, C] and 'tokens' [batch, context_length]; received {got}.")
    images, tokens = x["images"], x["tokens"]
    if len(images.shape) != 4 or len(tokens.shape) != 2:
        raise ValueError(f"`{where}['images']` must have rank 4 and `{where}['tokens']` rank 2; "
                         f"received shapes {tuple(images.shape)} and {tuple(tokens.shape)}.")
    if None not in (images.shape[0], tokens.shape[0]) and images.shape[0] != tokens.shape[0]:
        raise ValueError(f"`{where}['tokens']` must hold one caption per image; received "
                         f"{tokens.shape[0]} captions for {images.shape[0]} images.")


@register
class CLIP(ContrastiveModel):
    """Two towers, each with a linear projection to a shared L2-normalized embedding.

    Args:
      encoder: the image encoder (any of `supcon_tf.encoders`).
      head: the image projection (default: linear to 128, CLIP's form).
      text_encoder: a layer mapping token ids to features, a dict of `TextTransformer`
        arguments, or None (a `TextTransformer` sized from `tokenizer`).
      text_head: the text projection (default: linear to the image head's output_dim).
      loss: "clip" (default), "siglip", or a `CLIPLoss` / `SigLIPLoss`; its initial
        logit scale and bias become the model's learnable `logit_scale` layer.
      tokenizer: the `WordTokenizer` of the captions, kept with the model (export).
      augmenter, probe: as for `ContrastiveModel` (an augmenter's first view is used).
    """

    min_views = 1
    default_loss = CLIPLoss

    @classmethod
    def resolve_loss(cls, kwargs):
        """(loss class, its kwargs) from a config's `loss` dict: `name` ("clip" or
        "siglip") picks the loss, the other keys are its arguments (e.g. scale_init)."""
        kwargs = dict(kwargs)
        name = kwargs.pop("name", "clip")
        if name not in LOSSES:
            raise unknown_name_error("loss", name, LOSSES)
        return LOSSES[name], kwargs

    def __init__(self, encoder, head=None, text_encoder=None, text_head=None, loss=None,
                 tokenizer=None, augmenter=None, probe=None, **kwargs):
        loss = image_text_loss(loss)
        super().__init__(encoder, head if head is not None else _linear_head(128), loss=loss,
                         augmenter=augmenter, probe=probe, **kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = WordTokenizer.from_config(tokenizer)
        self.tokenizer = tokenizer
        if text_encoder is None:
            if tokenizer is None:
                raise ValueError("`text_encoder` or `tokenizer` must be given: the default text "
                                 "encoder is sized from the tokenizer's vocabulary.")
            text_encoder = {}
        if isinstance(text_encoder, dict):
            sizes = {} if tokenizer is None else dict(vocab_size=tokenizer.vocab_size,
                                                      context_length=tokenizer.context_length)
            text_encoder = TextTransformer(**{**sizes, **text_encoder})
        self.text_encoder = text_encoder
        self.text_head = text_head if text_head is not None else _linear_head(
            self.head.output_dim)
        self.logit_scale = LogitScale(scale_init=loss.scale_init, max_scale=loss.max_scale,
                                      use_bias=loss.uses_bias, bias_init=loss.bias_init,
                                      name="logit_scale")

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            if not self.text_encoder.built:  # A deserialized one arrives built.
                self.text_encoder.build(tuple(input_shape["tokens"]))
            text = tuple(self.text_encoder.compute_output_shape(tuple(input_shape["tokens"])))
            if not self.text_head.built:
                self.text_head.build(text)
            input_shape = input_shape["images"]
        super().build(input_shape)

    def encode_images(self, images, training=False):
        """(representation [b, r], embedding [b, p]) of images [b, H, W, C]."""
        representation = self.encoder(images, training=training)
        return representation, self.head(representation, training=training)

    def encode_text(self, tokens, training=False):
        """The text embedding [b, p] of token ids [b, L]."""
        return self.text_head(self.text_encoder(tokens, training=training), training=training)

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict):
            return self.encoder(inputs, training=training)
        images = inputs["images"]
        if training and self.augmenter is not None:
            images = self.augmenter(images, training=True)
            if len(images.shape) == 5:
                images = images[:, 0]
        representation, projection = self.encode_images(images, training)
        outputs = {"representation": representation, "projection": projection,
                   "text_projection": self.encode_text(inputs["tokens"], training)}
        if self.probe is not None:
            outputs["probe_logits"] = self.probe(representation)
        return outputs

    def compile(self, optimizer="sgd", loss="auto", **kwargs):
        """Like `Model.compile`; `loss` may only be "auto" (the constructor's loss)."""
        if loss not in ("auto", None):
            raise ValueError("`loss` of CLIP.compile must be 'auto': the loss is chosen at "
                             "construction (`loss='clip'` or 'siglip'), with its logit scale.")
        keras.Model.compile(self, optimizer=optimizer, **kwargs)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        pairs = {"image": y_pred["projection"], "text": y_pred["text_projection"],
                 "log_scale": self.logit_scale.log_scale, "bias": self.logit_scale.bias}
        return self.method_loss(None, pairs, sample_weight)

    def _check_batch(self, data, training):
        x, _, _ = unpack_batch(data)
        check_pairs(x)

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, dict):  # In-memory pairs: the images' checks (finite, not empty).
            check_pairs(x)
            check_arrays(x["images"], y, who=f"{type(self).__name__}.fit")
        return super().fit(x, y, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            text_encoder=keras.saving.serialize_keras_object(self.text_encoder),
            text_head=keras.saving.serialize_keras_object(self.text_head),
            tokenizer=None if self.tokenizer is None else self.tokenizer.get_config())
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        for key in ("encoder", "head", "loss", "augmenter", "probe", "text_encoder",
                    "text_head"):
            config[key] = keras.saving.deserialize_keras_object(config.get(key))
        return cls(**config)
