"""Metric-learning losses over class ids: triplet, multi-similarity, circle, proxy-anchor.

Each function takes embeddings [batch, dim] (any scale: cosine scores normalize them)
and class ids [batch], and returns float32 (float64 kept) per-anchor losses [batch]
(proxy-anchor: one scalar for the batch). Under a `tf.distribute` strategy the local
samples are the anchors against the global batch (`pairwise.global_pairs`); an anchor
without a positive or a negative in the global batch gets 0, as in the contrastive loss.
Masks are constants (mining picks pairs, gradients flow through the picked scores).
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_labels
from supcon_tf.losses.contrastive import masked_logsumexp
from supcon_tf.losses.pairwise import (
    DISTANCES,
    check_embeddings,
    global_pairs,
    pairwise_distance,
    pairwise_similarity,
)
from supcon_tf.validation import check_choice, check_positive

TRIPLET_MINING = ("batch_hard", "semi_hard")
TRIPLET_AVERAGES = ("pairs", "anchors")


def _masked_max(values, mask):
    """Row-wise max of `values` where `mask` (0 on empty rows) and whether the row had any."""
    nonempty = ops.any(mask > 0, axis=-1)
    best = ops.max(ops.where(mask > 0, values, float("-inf")), axis=-1)
    return ops.where(nonempty, best, 0.0), nonempty


def _masked_min(values, mask):
    best, nonempty = _masked_max(-values, mask)
    return -best, nonempty


def _log1p_sum_exp(values, mask):
    """Row-wise log(1 + sum_{mask} exp(values)) (0 on empty rows) and whether non-empty."""
    log_sum, nonempty = masked_logsumexp(values, mask)
    return ops.where(nonempty, ops.softplus(log_sum), 0.0), nonempty


def check_triplet_options(margin, mining, distance, average="pairs"):
    check_positive("margin", margin, allow_zero=True)
    check_choice("mining", mining, TRIPLET_MINING)
    check_choice("distance", distance, DISTANCES)
    check_choice("average", average, TRIPLET_AVERAGES)


def triplet_loss(embeddings, labels, *, margin=0.2, mining="batch_hard", distance="cosine",
                 soft_margin=False, average="pairs"):
    """Triplet loss per anchor, shape [batch].

    mining="batch_hard" (Hermans et al. 2017): per anchor, the farthest positive and
    the nearest negative of the batch: [margin + d(a, p) - d(a, n)]_+.
    mining="semi_hard" (Schroff et al. 2015, FaceNet; as TF-Addons'
    `triplet_semihard_loss`): every positive p of the anchor with the nearest negative
    farther than p (else the farthest negative). `average="pairs"` (the default, as
    TF-Addons) weighs every (anchor, positive) pair of the global batch equally: the
    mean of the returned per-anchor values is the mean over all positive pairs;
    `average="anchors"` gives each anchor the mean over its own positives, then weighs
    the anchors equally (the two differ on batches whose classes are unbalanced; on
    class-balanced P x K batches they agree). Batch-hard has one triplet per anchor. `soft_margin=True` replaces the hinge by log(1 + exp(d(a, p) -
    d(a, n))) (Hermans et al.; `margin` is then unused). `distance`: "cosine"
    (1 - cosine similarity) or "squared_l2" (on the embeddings as given).
    Semi-hard mining holds a [local, global, global] tensor.
    """
    check_triplet_options(margin, mining, distance, average)
    embeddings, labels = check_embeddings(embeddings, labels)
    global_embeddings, positives, negatives = global_pairs(embeddings, labels)
    d = pairwise_distance(embeddings, global_embeddings, distance)

    def hinge(x):
        return ops.softplus(x) if soft_margin else ops.relu(x + float(margin))

    if mining == "batch_hard":
        hardest_positive, has_positive = _masked_max(d, positives)
        hardest_negative, has_negative = _masked_min(d, negatives)
        loss = hinge(hardest_positive - hardest_negative)
        return ops.where(ops.logical_and(has_positive, has_negative), loss, 0.0)
    # Semi-hard: [anchor, positive, negative] comparisons.
    d_ap = ops.expand_dims(d, 2)
    d_an = ops.expand_dims(d, 1)
    neg = ops.expand_dims(negatives, 1) * ops.ones_like(d_ap)
    outside = neg * ops.cast(ops.greater(d_an, d_ap), d.dtype)
    nearest_outside, has_outside = _masked_min(d_an * ops.ones_like(d_ap), outside)
    farthest, has_negative = _masked_max(d, negatives)
    chosen = ops.where(has_outside, nearest_outside, ops.expand_dims(farthest, 1))
    pair_loss = hinge(d - chosen) * positives
    count = ops.sum(positives, axis=1)
    if average == "anchors":
        loss = ops.divide_no_nan(ops.sum(pair_loss, axis=1), count)
    else:  # Every replica's anchors: the global pair count and anchor count.
        counts = distribute.cross_replica_concat(count)[0]
        pairs_per_anchor = ops.sum(counts) / ops.cast(ops.shape(counts)[0], counts.dtype)
        loss = ops.divide_no_nan(ops.sum(pair_loss, axis=1), pairs_per_anchor)
    return ops.where(has_negative, loss, 0.0)


def check_multi_similarity_options(alpha, beta, base, epsilon):
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    check_positive("epsilon", epsilon, allow_zero=True)
    del base  # Any threshold in [-1, 1] or beyond is meaningful.


def multi_similarity_loss(embeddings, labels, *, alpha=2.0, beta=50.0, base=0.5,
                          epsilon=0.1):
    """Multi-similarity loss (Wang et al., CVPR 2019, Eq. 12 with the mining of Eq. 10-11).

    With S the cosine similarities, an anchor keeps the negatives with
    S_ik + epsilon > min over its positives of S_ij, and the positives with
    S_ij - epsilon < max over its negatives of S_ik; its loss is
    1/alpha log(1 + sum_P exp(-alpha (S_ij - base))) + 1/beta log(1 + sum_N exp(beta
    (S_ik - base))), 0 when either kept set is empty (as the official code skips it).
    """
    check_multi_similarity_options(alpha, beta, base, epsilon)
    embeddings, labels = check_embeddings(embeddings, labels)
    global_embeddings, positives, negatives = global_pairs(embeddings, labels)
    s = pairwise_similarity(embeddings, global_embeddings)
    fixed = ops.stop_gradient(s)
    hardest_positive, _ = _masked_min(fixed, positives)
    hardest_negative, _ = _masked_max(fixed, negatives)
    keep_negatives = negatives * ops.cast(
        ops.greater(fixed + epsilon, ops.expand_dims(hardest_positive, 1)), s.dtype)
    keep_positives = positives * ops.cast(
        ops.less(fixed - epsilon, ops.expand_dims(hardest_negative, 1)), s.dtype)
    alpha, beta, base = float(alpha), float(beta), float(base)
    positive_term, has_positive = _log1p_sum_exp(-alpha * (s - base), keep_positives)
    negative_term, has_negative = _log1p_sum_exp(beta * (s - base), keep_negatives)
    loss = positive_term / alpha + negative_term / beta
    return ops.where(ops.logical_and(has_positive, has_negative), loss, 0.0)


def check_circle_options(gamma, margin):
    check_positive("gamma", gamma)
    check_positive("margin", margin, allow_zero=True)


def circle_loss(embeddings, labels, *, gamma=80.0, margin=0.4):
    """Circle loss (Sun et al., CVPR 2020, Eq. 6 with the margins of Eq. 8) per anchor.

    With cosine similarities s, alpha_p = [1 + m - s_p]_+ and alpha_n = [s_n + m]_+
    (constants, as in the official code), Delta_p = 1 - m and Delta_n = m:
    log(1 + sum_N exp(gamma alpha_n (s_n - Delta_n)) sum_P exp(-gamma alpha_p (s_p -
    Delta_p))); 0 for an anchor without a positive or a negative. Defaults as Keras'
    `Circle` loss.
    """
    check_circle_options(gamma, margin)
    embeddings, labels = check_embeddings(embeddings, labels)
    global_embeddings, positives, negatives = global_pairs(embeddings, labels)
    s = pairwise_similarity(embeddings, global_embeddings)
    gamma, margin = float(gamma), float(margin)
    alpha_p = ops.stop_gradient(ops.relu(1.0 + margin - s))
    alpha_n = ops.stop_gradient(ops.relu(s + margin))
    log_p, has_positive = masked_logsumexp(-gamma * alpha_p * (s - (1.0 - margin)), positives)
    log_n, has_negative = masked_logsumexp(gamma * alpha_n * (s - margin), negatives)
    valid = ops.logical_and(has_positive, has_negative)
    return ops.where(valid, ops.softplus(ops.where(valid, log_p + log_n, 0.0)), 0.0)


def check_proxy_anchor_options(alpha, delta):
    check_positive("alpha", alpha)
    check_positive("delta", delta, allow_zero=True)


def proxy_anchor_loss(similarities, labels, *, alpha=32.0, delta=0.1):
    """Proxy-anchor loss (Kim et al., CVPR 2020, Eq. 4) of a batch: a scalar.

    `similarities` [batch, num_classes]: cosine similarity of each sample to each
    class proxy (`supcon_tf.heads.Proxies`). With P+ the proxies that have samples in
    the (global) batch: 1/|P+| sum_{p in P+} log(1 + sum_{x of class p}
    exp(-alpha (s(x, p) - delta))) + 1/|P| sum_p log(1 + sum_{x not of class p}
    exp(alpha (s(x, p) + delta))). Under a strategy every replica computes the loss
    of the global batch (it does not split over anchors).
    """
    check_proxy_anchor_options(alpha, delta)
    similarities, labels = check_embeddings(similarities, labels, where="similarities")
    num_classes = similarities.shape[1]
    check_labels("labels", labels, num_classes)  # One proxy per class.
    similarities = distribute.cross_replica_concat(similarities)[0]
    labels = distribute.cross_replica_concat(labels)[0]
    positives = ops.transpose(ops.one_hot(ops.cast(labels, "int32"), num_classes,
                                          dtype=similarities.dtype))
    s = ops.transpose(similarities)  # [proxies, samples]
    alpha, delta = float(alpha), float(delta)
    positive_terms, with_positives = _log1p_sum_exp(-alpha * (s - delta), positives)
    negative_terms, _ = _log1p_sum_exp(alpha * (s + delta), 1.0 - positives)
    count = ops.sum(ops.cast(with_positives, s.dtype))
    return (ops.divide_no_nan(ops.sum(positive_terms), count)
            + ops.sum(negative_terms) / float(num_classes))
