"""NCE over the comparisons of the contrastive framework (AMDIM's, CPC's InfoNCE, YADIM's).

Each local sample i has S sources (a global feature, a sampled location, a prediction)
and is scored against the T targets of every sample j of the global batch: scores
[b, S, B, T]. Within sample i, `positive` [S, T] says which targets are a source's
positives and `negative_within` [S, T] which are its negatives too (CPC's other
patches); every target of every other sample is a negative. Each positive pair (s, t)
gives the log-softmax of its score against itself and the source's negatives,

    l = s_pos - log(exp(s_pos) + sum_neg exp(s_neg)),

as AMDIM's released code writes it (Bachman et al., NeurIPS 2019, `costs.py`), which is
InfoNCE (van den Oord et al. 2018) when a source has one positive. Options:

- `tclip`: scores are first soft-clipped to tclip * tanh(s / tclip) (AMDIM: 20);
- `temperature`: then divided by it (1: AMDIM and CPC; 0.1-0.2: SimCLR-style);
- `score_penalty`: adds score_penalty * mean(raw^2) over every raw (unclipped) score, the
  AMDIM regularizer on scores scaled by 1/sqrt(dim) (the "scaled_dot" similarity); the
  released `costs.py` has had 5e-2 and, in another revision, 4e-2 as its weight.

The per-sample loss is -mean of l over the sample's positive pairs plus its penalty.
"""

import keras
from keras import ops

from supcon_tf.inputs import check_finite, check_rank
from supcon_tf.losses.contrastive import logaddexp, masked_logsumexp
from supcon_tf.registry import register
from supcon_tf.validation import check_number, check_positive


def tanh_clip(scores, tclip):
    """tclip * tanh(scores / tclip): scores soft-clipped to (-tclip, tclip).

    tanh(y) is computed as 2 sigmoid(2y) - 1: Keras' JAX `ops.tanh` is off by ~1e-8 in
    float64, which the float64 reference checks would see.
    """
    if tclip is None:
        return scores
    return tclip * (2.0 * ops.sigmoid(2.0 * scores / tclip) - 1.0)


def validate_options(tclip, temperature, score_penalty):
    """Raises ValueError for option values `nce_loss` does not accept."""
    if tclip is not None:
        check_positive("tclip", check_number("tclip", tclip))
    check_positive("temperature", check_number("temperature", temperature))
    check_positive("score_penalty", check_number("score_penalty", score_penalty),
                   allow_zero=True)


def nce_loss(scores, same, positive, negative_within=None, *, tclip=None, temperature=1.0,
             score_penalty=0.0):
    """Per-sample NCE loss [b] (see the module docstring).

    Args:
      scores: [b, S, B, T] raw similarities of the local sources to the global targets.
        float64 is kept (reference checks); other dtypes are computed in float32.
      same: [b, B], 1 where global sample j is local sample i (the positives' sample).
      positive: [S, T] 0/1, the positives of each source within its own sample.
      negative_within: [S, T] 0/1 or None (none), negatives within its own sample.
    """
    validate_options(tclip, temperature, score_penalty)
    scores = ops.convert_to_tensor(scores)
    check_rank("scores", scores, 4, "[batch, sources, global_batch, targets]")
    check_finite("scores", scores)
    dtype = "float64" if scores.dtype == "float64" else "float32"
    raw = ops.cast(scores, dtype)
    b, s, g, t = (ops.shape(raw)[i] for i in range(4))
    same = ops.cast(same, dtype)[:, None, :, None]
    pos = same * ops.cast(positive, dtype)[None, :, None, :]
    neg = 1.0 - same
    if negative_within is not None:
        neg = neg + same * ops.cast(negative_within, dtype)[None, :, None, :]
    neg = ops.broadcast_to(neg, ops.shape(raw))
    logits = tanh_clip(raw, None if tclip is None else float(tclip)) / float(temperature)
    log_neg, has_neg = masked_logsumexp(ops.reshape(logits, (b * s, g * t)),
                                        ops.reshape(neg, (b * s, g * t)))
    log_neg = ops.reshape(log_neg, (b, s, 1, 1))
    has_neg = ops.reshape(has_neg, (b, s, 1, 1))
    log_ratio = logits - ops.where(has_neg, logaddexp(logits, log_neg), logits)
    count = ops.sum(pos, axis=(1, 2, 3))
    total = ops.sum(ops.where(pos > 0, log_ratio, 0.0), axis=(1, 2, 3))
    loss = -ops.divide_no_nan(total, count)
    if score_penalty:
        size = ops.cast(s * g * t, dtype)  # (JAX's `ops.mean` rounds float64 to float32.)
        loss = loss + float(score_penalty) * ops.sum(ops.square(raw), axis=(1, 2, 3)) / size
    return loss


@register
class NCELoss(keras.losses.Loss):
    """`nce_loss` as a serializable Keras loss.

    `loss(None, comparison)` with `comparison` a dict of `nce_loss`'s arrays: "scores",
    "same", "positive" and optionally "negative_within".
    """

    def __init__(self, tclip=None, temperature=1.0, score_penalty=0.0,
                 reduction="sum_over_batch_size", name="nce_loss", dtype=None):
        validate_options(tclip, temperature, score_penalty)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.tclip = None if tclip is None else float(tclip)
        self.temperature = float(temperature)
        self.score_penalty = float(score_penalty)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras' Loss rejects y_true=None; the loss reads no labels.
        return super().__call__(ops.zeros((ops.shape(y_pred["scores"])[0],)), y_pred,
                                sample_weight)

    def call(self, y_true, y_pred):
        del y_true
        return nce_loss(y_pred["scores"], y_pred["same"], y_pred["positive"],
                        y_pred.get("negative_within"), tclip=self.tclip,
                        temperature=self.temperature, score_penalty=self.score_penalty)

    def get_config(self):
        config = super().get_config()
        config.update(tclip=self.tclip, temperature=self.temperature,
                      score_penalty=self.score_penalty)
        return config
