"""InstDisc's NCE loss: the non-parametric softmax over a memory bank, estimated by NCE.

Instance discrimination (Wu, Xiong, Yu and Lin, CVPR 2018, Sec. 3): each of the n
training samples is its own class, scored by its memory-bank entry v_i,
    P(i | f) = exp(v_i.f / T) / Z,
with T = 0.07. The sum Z over all n entries is too costly, so noise-contrastive
estimation (Sec. 3.2) draws m noise entries uniformly (P_n = 1/n) and asks, per pair,
"data or noise?", with h(i, v) = P(i | v) / (P(i | v) + m P_n):
    J_i = -log h(i, v_i) - sum_{k=1..m} log(1 - h(j_k, v_jk)) + lambda ||f_i - v_i||^2,
the last term the proximal regularization of Sec. 3.4 (lambda = 30 there; 0 leaves it
out). Z is a constant (no gradient): either given (`normalizer`, the released code's
one estimate, n x the mean of exp(v.f / T) over the first batch, see
`supcon_tf.methods.instdisc`) or, with `normalizer=None`, the paper's Monte Carlo
estimate per sample, Z_i = (n / m) sum_k exp(v_jk.f_i / T), from its noise entries.

Computed in the log domain: -log h = softplus(log(m P_n) - log P) and
-log(1 - h) = softplus(log P - log(m P_n)); the released code's `eps` = 1e-7 in the
denominators (a guard against 0 / 0 that m P_n >> 1e-7 never reaches) is left out.
"""

import math

import keras
from keras import ops

from supcon_tf.inputs import check_finite, check_rank, check_same_size, check_unit_rows
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive


def _check_inputs(features, positives, noise):
    features, positives, noise = (ops.convert_to_tensor(t) for t in (features, positives,
                                                                     noise))
    check_rank("features", features, 2, "[batch, dim]")
    check_rank("positives", positives, 2, "[batch, dim]")
    check_rank("noise", noise, 3, "[batch, num_noise, dim]")
    check_same_size("positives", positives, "features", features)
    check_same_size("noise", noise, "features", features)
    check_same_size("positives", positives, "features", features, axis=1, what="feature size")
    if None not in (noise.shape[2], features.shape[1]) and noise.shape[2] != features.shape[1]:
        raise ValueError(f"`noise` feature size ({noise.shape[2]}) must equal `features`' "
                         f"({features.shape[1]}); received shapes noise={tuple(noise.shape)} "
                         f"and features={tuple(features.shape)}.")
    for name, value in (("features", features), ("positives", positives), ("noise", noise)):
        check_finite(name, value)
        check_unit_rows(name, value)
    if noise.shape[1] is None or noise.shape[1] < 1:
        raise ValueError("`noise` must hold at least one noise entry per sample (axis 1); "
                         f"received shape {tuple(noise.shape)}.")
    return features, positives, noise


def instdisc_loss(features, positives, noise, bank_size, *, temperature=0.07, proximal=0.0,
             normalizer=None):
    """InstDisc's NCE loss per sample, [batch] (see the module docstring).

    Args:
      features: [batch, dim] L2-normalized features f_i (the gradient flows here).
      positives: [batch, dim] each sample's own bank entry v_i (no gradient).
      noise: [batch, m, dim] the bank entries drawn as noise for each sample (no gradient).
      bank_size: n, the entries of the bank (the noise distribution is 1 / n): an int, or
        a scalar tensor.
      temperature: T. proximal: lambda of the proximal term.
      normalizer: Z, a positive scalar or [batch]; None for the per-sample estimate.
    """
    check_positive("temperature", float(temperature))
    check_positive("proximal", float(proximal), allow_zero=True)
    if not hasattr(bank_size, "shape"):  # A tensor (inside a Loss call) passes as is.
        bank_size = check_int("bank_size", bank_size, minimum=1)
    features, positives, noise = _check_inputs(features, positives, noise)
    dtype = "float64" if features.dtype == "float64" else "float32"
    features, positives, noise = (ops.cast(t, dtype) for t in (features, positives, noise))
    positives, noise = ops.stop_gradient(positives), ops.stop_gradient(noise)
    num_noise = noise.shape[1]
    log_noise = math.log(num_noise) - ops.log(ops.cast(bank_size, dtype))  # log(m P_n)
    positive = ops.sum(features * positives, axis=-1) / float(temperature)
    scores = ops.einsum("bd,bmd->bm", features, noise) / float(temperature)
    if normalizer is None:  # Z_i = (n / m) sum_k exp(score_k): a constant of the step.
        log_z = ops.stop_gradient(ops.logsumexp(scores, axis=-1) - log_noise)
    else:
        log_z = ops.stop_gradient(ops.log(ops.cast(normalizer, dtype)))
        log_z = ops.broadcast_to(log_z, ops.shape(positive))
    data_term = ops.softplus(log_noise - (positive - log_z))
    noise_term = ops.sum(ops.softplus(scores - log_z[:, None] - log_noise), axis=-1)
    loss = data_term + noise_term
    if proximal:
        loss = loss + float(proximal) * ops.sum(ops.square(features - positives), axis=-1)
    return loss


def normalizer_estimate(features, positives, noise, bank_size, temperature=0.07):
    """The released code's Z: n x the mean of exp(v.f / T) over the batch's positive and
    noise scores, per sample ([batch]; the mean of these over the batch is the Z of the
    batch)."""
    features, positives, noise = (ops.stop_gradient(ops.cast(t, "float32"))
                                  for t in (features, positives, noise))
    positive = ops.sum(features * positives, axis=-1, keepdims=True)
    scores = ops.concatenate([positive, ops.einsum("bd,bmd->bm", features, noise)], axis=1)
    return float(bank_size) * ops.mean(ops.exp(scores / float(temperature)), axis=-1)


@register
class InstDiscLoss(keras.losses.Loss):
    """`loss(None, {"features", "positives", "noise", "bank_size"[, "normalizer"]})`:
    `instdisc_loss` averaged over the batch (temperature 0.07 and lambda 30: the paper's)."""

    def __init__(self, temperature=0.07, proximal=30.0, reduction="sum_over_batch_size",
                 name="instdisc_loss", dtype=None):
        check_positive("temperature", temperature)
        check_positive("proximal", proximal, allow_zero=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.temperature = float(temperature)
        self.proximal = float(proximal)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:  # Keras' Loss rejects None; [batch, 0] stands for "no labels".
            y_true = ops.zeros((ops.shape(y_pred["features"])[0], 0), "float32")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        return instdisc_loss(y_pred["features"], y_pred["positives"], y_pred["noise"],
                        y_pred["bank_size"], temperature=self.temperature,
                        proximal=self.proximal, normalizer=y_pred.get("normalizer"))

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature, proximal=self.proximal)
        return config
