"""Redundancy-reduction losses: Barlow Twins and VICReg, statistics of the GLOBAL batch.

Both compare the embeddings of two views through per-dimension statistics over the
batch (a cross-correlation, a variance, a covariance), not per-sample terms, so
under `tf.distribute` the embeddings are first gathered with the package's one
differentiable gather (`distribute.cross_replica_concat`): every replica computes
the loss of the global batch, and summing the replicas' gradients of it (Keras
scales each by 1 / replicas) gives the one-device gradient on the global batch. The
official codes differ there: Barlow Twins' `torch.distributed.all_reduce` of the
cross-correlation passes no gradient between replicas, so its DDP-averaged gradient
is 1 / replicas of the global loss's; VICReg's `FullGatherLayer` is differentiable,
as here. With more than two views (multi-crop) the loss is the mean over the
V (V - 1) / 2 pairs of views, which for two views is the papers' loss.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_rank
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


def global_views(embeddings, name="embeddings"):
    """The checked embeddings [batch, views >= 2, dim] of the global batch (gathered across
    replicas, differentiably), in float32 (float64 kept)."""
    embeddings = ops.convert_to_tensor(embeddings)
    check_rank(name, embeddings, 3, "[batch, num_views, dim]")
    if embeddings.shape[1] is None or embeddings.shape[1] < 2:
        raise ValueError(f"`{name}` must hold at least 2 views along axis 1, shape [batch, "
                         f"num_views >= 2, dim]; received shape {tuple(embeddings.shape)}.")
    check_finite(name, embeddings)
    dtype = "float64" if embeddings.dtype == "float64" else "float32"
    z, _ = distribute.cross_replica_concat(ops.cast(embeddings, dtype))
    z = ops.reshape(z, (-1, *embeddings.shape[1:]))  # all_gather may lose the static shape.
    if z.shape[0] is not None and z.shape[0] < 2:
        raise ValueError(f"`{name}` must hold at least 2 samples in the global batch (its "
                         "statistics are over the batch); received shape "
                         f"{tuple(embeddings.shape)}.")
    return z


def mean_over_view_pairs(fn, z):
    """The mean of fn(z[:, i], z[:, j]) over the pairs of views i < j of z [batch, V, dim]."""
    num_views = z.shape[1]
    pairs = [(i, j) for i in range(num_views) for j in range(i + 1, num_views)]
    return sum(fn(z[:, i], z[:, j]) for i, j in pairs) / len(pairs)


def off_diagonal_square_sum(matrix):
    """sum_{i != j} m_ij^2 of a square matrix (no D x D mask: D is 8192 in the papers)."""
    return ops.sum(ops.square(matrix)) - ops.sum(ops.square(ops.diagonal(matrix)))


def check_barlow_twins_options(lambd, scale_loss, epsilon):
    check_positive("lambd", lambd, allow_zero=True)
    check_positive("scale_loss", scale_loss)
    check_positive("epsilon", epsilon, allow_zero=True)


def barlow_twins_loss(embeddings, lambd=0.0051, scale_loss=1.0, epsilon=1e-5):
    """Barlow Twins (Zbontar et al., ICML 2021): scale_loss x (sum_i (1 - C_ii)^2 +
    lambd sum_{i != j} C_ij^2), a scalar, from embeddings [batch, views, dim].

    C is the cross-correlation of the two views' embeddings over the global batch of
    N samples, as the released code computes it: each view batch-normalized without
    affine parameters (mean and biased variance over the batch, `epsilon` 1e-5 of
    `nn.BatchNorm1d`), then C = bn(z_a)^T bn(z_b) / N. With `epsilon=0` this is the
    paper's Eq. 2 (the correlation of the mean-centred outputs) exactly. `scale_loss`
    is the first released code's `--scale-loss` (1 leaves the loss as in the paper).
    """
    check_barlow_twins_options(lambd, scale_loss, epsilon)
    z = global_views(embeddings)

    def pair(z_a, z_b):
        batch = ops.cast(ops.shape(z_a)[0], z_a.dtype)

        def batch_norm(x):
            centred = x - ops.mean(x, axis=0, keepdims=True)
            return centred * ops.rsqrt(ops.mean(ops.square(centred), axis=0) + epsilon)

        c = ops.matmul(ops.transpose(batch_norm(z_a)), batch_norm(z_b)) / batch
        on_diagonal = ops.sum(ops.square(ops.diagonal(c) - 1.0))
        return scale_loss * (on_diagonal + lambd * off_diagonal_square_sum(c))

    return mean_over_view_pairs(pair, z)


def check_vicreg_options(invariance_weight, variance_weight, covariance_weight, epsilon):
    for name, value in (("invariance_weight", invariance_weight),
                        ("variance_weight", variance_weight),
                        ("covariance_weight", covariance_weight)):
        check_positive(name, value, allow_zero=True)
    check_positive("epsilon", epsilon)


def vicreg_loss(embeddings, invariance_weight=25.0, variance_weight=25.0,
                covariance_weight=1.0, epsilon=1e-4):
    """VICReg (Bardes et al., ICLR 2022): invariance_weight x s + variance_weight x v +
    covariance_weight x c, a scalar, from embeddings [batch, views, dim], as the
    released code computes it, all three over the global batch of N samples:

      s = mean over samples and dimensions of (z_a - z_b)^2 (`F.mse_loss`);
      v = (mean_j relu(1 - sqrt(Var(z_a^j) + epsilon)) + the same of z_b) / 2, with the
          unbiased variance over the batch;
      c = (sum_{i != j} Cov(z_a)_ij^2 + the same of z_b) / dim, Cov = centred^T centred
          / (N - 1).

    The paper's Eq. 6 differs by two constant factors: its s sums over dimensions
    (dim x the code's) and its variance term is not halved; so the paper's loss with
    weights (lambda, mu, nu) is this one with (lambda x dim, 2 mu, nu).
    """
    check_vicreg_options(invariance_weight, variance_weight, covariance_weight, epsilon)
    z = global_views(embeddings)

    def pair(z_a, z_b):
        batch = ops.cast(ops.shape(z_a)[0], z_a.dtype)
        dim = z_a.shape[-1]
        invariance = ops.mean(ops.square(z_a - z_b))
        variance, covariance = 0.0, 0.0
        for x in (z_a, z_b):
            centred = x - ops.mean(x, axis=0, keepdims=True)
            var = ops.sum(ops.square(centred), axis=0) / (batch - 1.0)
            variance += ops.mean(ops.relu(1.0 - ops.sqrt(var + epsilon))) / 2.0
            cov = ops.matmul(ops.transpose(centred), centred) / (batch - 1.0)
            covariance += off_diagonal_square_sum(cov) / dim
        return (invariance_weight * invariance + variance_weight * variance
                + covariance_weight * covariance)

    return mean_over_view_pairs(pair, z)


class GlobalBatchLoss(keras.losses.Loss):
    """`loss(labels_or_None, embeddings [b, V, D])` for a loss of the global batch (labels
    unused). The scalar is repeated for each local sample, so that Keras' mean over the
    batch gives it back and Keras' 1 / replicas scaling of it, summed over the replicas
    through the differentiable gather, gives the one-device gradient."""

    def global_loss(self, embeddings):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:  # Labels are unused; Keras' Loss rejects None.
            y_true = ops.zeros((ops.shape(y_pred)[0], 0), "float32")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        del y_true
        return self.global_loss(y_pred) * ops.ones_like(y_pred[:, 0, 0])


@register
class BarlowTwinsLoss(GlobalBatchLoss):
    """`barlow_twins_loss` as a serializable Keras loss; defaults are the released code's
    (lambd 0.0051, batch-norm epsilon 1e-5, no loss scale)."""

    def __init__(self, lambd=0.0051, scale_loss=1.0, epsilon=1e-5,
                 reduction="sum_over_batch_size", name="barlow_twins_loss", dtype=None):
        check_barlow_twins_options(lambd, scale_loss, epsilon)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.lambd = float(lambd)
        self.scale_loss = float(scale_loss)
        self.epsilon = float(epsilon)

    def global_loss(self, embeddings):
        return barlow_twins_loss(embeddings, self.lambd, self.scale_loss, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(lambd=self.lambd, scale_loss=self.scale_loss, epsilon=self.epsilon)
        return config


@register
class VICRegLoss(GlobalBatchLoss):
    """`vicreg_loss` as a serializable Keras loss; defaults are the paper's 25 / 25 / 1
    and epsilon 1e-4."""

    def __init__(self, invariance_weight=25.0, variance_weight=25.0, covariance_weight=1.0,
                 epsilon=1e-4, reduction="sum_over_batch_size", name="vicreg_loss",
                 dtype=None):
        check_vicreg_options(invariance_weight, variance_weight, covariance_weight, epsilon)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.invariance_weight = float(invariance_weight)
        self.variance_weight = float(variance_weight)
        self.covariance_weight = float(covariance_weight)
        self.epsilon = float(epsilon)

    def global_loss(self, embeddings):
        return vicreg_loss(embeddings, self.invariance_weight, self.variance_weight,
                           self.covariance_weight, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(invariance_weight=self.invariance_weight,
                      variance_weight=self.variance_weight,
                      covariance_weight=self.covariance_weight, epsilon=self.epsilon)
        return config
