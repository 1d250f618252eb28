"""Image-text contrastive losses: CLIP's symmetric InfoNCE and SigLIP's pairwise sigmoid.

CLIP (Radford et al., ICML 2021): cross-entropy of each image over the global batch's
texts and of each text over its images, with logits scaled by `exp(log_scale)`.
SigLIP (Zhai et al., ICCV 2023): an independent binary loss on every image-text pair,
logits `exp(log_scale) * <image, text> + bias`, summed over the pairs and divided by the
batch size (big_vision's `sigmoid_loss`). Under a `tf.distribute` strategy SigLIP runs
over the other replicas' texts one replica chunk at a time, so no [global, global]
matrix is built. The learnable `log_scale` / `bias` live in `supcon_tf.heads.LogitScale`;
these functions take them as tensors.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_rank, check_same_size, check_unit_rows
from supcon_tf.losses.contrastive import logaddexp
from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive


def _check_pairs(image_features, text_features):
    """The two towers' embeddings: [batch, dim] each, same shape, finite unit rows."""
    for name, x in (("image_features", image_features), ("text_features", text_features)):
        check_rank(name, x, 2, "[batch, dim]")
        check_finite(name, x)
        check_unit_rows(name, x)
    check_same_size("text_features", text_features, "image_features", image_features)
    check_same_size("text_features", text_features, "image_features", image_features, axis=1,
                    what="dim")


def _prepare(image_features, text_features, *scalars):
    image_features = ops.convert_to_tensor(image_features)
    text_features = ops.convert_to_tensor(text_features)
    _check_pairs(image_features, text_features)
    dtype = "float64" if image_features.dtype == "float64" else "float32"
    cast = [ops.cast(x, dtype) for x in (image_features, text_features)]
    # Python numbers straight to `dtype` (not through float32: the float64 checks).
    scalars = [ops.convert_to_tensor(s, dtype) if isinstance(s, (int, float))
               else ops.cast(ops.convert_to_tensor(s), dtype) for s in scalars]
    return cast + [ops.reshape(s, ()) for s in scalars]


def _logsumexp(x, axis):
    """Stable log-sum-exp in x's own dtype (Keras' JAX one rounds float64 to float32)."""
    high = ops.stop_gradient(ops.max(x, axis=axis, keepdims=True))
    return ops.squeeze(high, axis) + ops.log(ops.sum(ops.exp(x - high), axis=axis))


def clip_loss(image_features, text_features, log_scale):
    """Per-sample symmetric InfoNCE, shape [batch]: the mean of image->text and text->image.

    Args:
      image_features, text_features: [batch, dim] L2-normalized embeddings; row i of each
        is a matching pair. float64 is kept (reference checks); else float32.
      log_scale: scalar, the log of the logit scale (1 / temperature). CLIP clips the
        scale at 100 on the variable after each step (`LogitScale`), as open_clip does.

    Under a strategy each local pair is scored against the texts and images of the global
    batch; the mean over the global batch is CLIP's loss.
    """
    image, text, log_scale = _prepare(image_features, text_features, log_scale)
    scale = ops.exp(log_scale)
    global_image, _ = distribute.cross_replica_concat(image)
    global_text, _ = distribute.cross_replica_concat(text)
    image_logits = scale * ops.matmul(image, ops.transpose(global_text))  # [local, global]
    text_logits = scale * ops.matmul(text, ops.transpose(global_image))
    positive = scale * ops.sum(image * text, axis=1)  # The pair's own logit.
    image_to_text = _logsumexp(image_logits, 1) - positive
    text_to_image = _logsumexp(text_logits, 1) - positive
    return (image_to_text + text_to_image) / 2.0


def _log_sigmoid(x):
    """log(sigmoid(x)) = -log(1 + exp(-x)), stable, in x's dtype."""
    return -logaddexp(ops.zeros_like(x), -x)


def siglip_loss(image_features, text_features, log_scale, bias):
    """Per-sample sigmoid loss, shape [batch]: image i's sum over the global batch's texts.

    Args:
      image_features, text_features: [batch, dim] L2-normalized embeddings.
      log_scale: scalar t' with logits exp(t') * <x, y> + bias.
      bias: scalar b.

    Pair (i, j) has label +1 if i == j else -1 and loss -log sigmoid(label * logit); the
    mean of this per-sample sum over the global batch is SigLIP's loss (big_vision: the
    sum over pairs divided by the batch size). Under a strategy with R replicas the
    texts are gathered ([global, dim], linear in the batch) and scored in R chunks of
    [local, local] logits: the [global, global] matrix is never built.
    """
    image, text, log_scale, bias = _prepare(image_features, text_features, log_scale, bias)
    scale = ops.exp(log_scale)
    local = ops.shape(image)[0]
    global_text, offset = distribute.cross_replica_concat(text)
    chunks = distribute.num_replicas_in_sync()
    eye = ops.eye(local, dtype=image.dtype)
    total = ops.zeros((local,), image.dtype)
    for chunk in range(chunks):
        texts = global_text[chunk * local:(chunk + 1) * local] if chunks > 1 else global_text
        logits = scale * ops.matmul(image, ops.transpose(texts)) + bias
        # Positives only on the diagonal of this replica's own chunk.
        own = ops.cast(ops.equal(chunk * local, offset), image.dtype) * eye
        labels = 2.0 * own - 1.0
        total = total - ops.sum(_log_sigmoid(labels * logits), axis=1)
    return total


def check_scale_init(name, value):
    """A positive, finite logit-scale initial value (the temperature's inverse)."""
    return float(check_positive(name, check_number(name, value)))


@register
class CLIPLoss(keras.losses.Loss):
    """CLIP's loss as a Keras loss: `loss(None, {"image", "text", "log_scale"})`.

    Holds the initial logit scale (1 / 0.07) and its clip (100), which the two-tower model
    gives its `LogitScale` layer.
    """

    uses_bias = False

    def __init__(self, scale_init=1.0 / 0.07, max_scale=100.0,
                 reduction="sum_over_batch_size", name="clip_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.scale_init = check_scale_init("scale_init", scale_init)
        self.max_scale = None if max_scale is None else check_scale_init("max_scale", max_scale)
        if self.max_scale is not None and self.scale_init > self.max_scale:
            raise ValueError(f"`scale_init` ({self.scale_init}) must be <= `max_scale` "
                             f"({self.max_scale}).")
        self.bias_init = 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Pairs are their own labels; Keras' Loss rejects y_true=None.
        return super().__call__(ops.zeros((ops.shape(y_pred["image"])[0], 0)), y_pred,
                                sample_weight)

    def call(self, y_true, y_pred):
        return clip_loss(y_pred["image"], y_pred["text"], y_pred["log_scale"])

    def get_config(self):
        config = super().get_config()
        config.update(scale_init=self.scale_init, max_scale=self.max_scale)
        return config


@register
class SigLIPLoss(CLIPLoss):
    """SigLIP's loss: `loss(None, {"image", "text", "log_scale", "bias"})`; its learnable
    scale starts at 10 and its bias at -10, unclipped (big_vision)."""

    uses_bias = True

    def __init__(self, scale_init=10.0, bias_init=-10.0, max_scale=None,
                 reduction="sum_over_batch_size", name="siglip_loss", dtype=None):
        super().__init__(scale_init=scale_init, max_scale=max_scale, reduction=reduction,
                         name=name, dtype=dtype)
        self.bias_init = check_number("bias_init", bias_init)

    def call(self, y_true, y_pred):
        return siglip_loss(y_pred["image"], y_pred["text"], y_pred["log_scale"],
                           y_pred["bias"])

    def get_config(self):
        config = super().get_config()
        config.update(bias_init=self.bias_init)
        return config
