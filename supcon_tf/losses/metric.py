"""Metric-learning losses over class ids: triplet, multi-similarity, circle, proxy-anchor.

Each function takes embeddings [batch, dim] (any scale: cosine scores normalize them)
and class ids [batch], and returns float32 (float64 kept) per-anchor losses [batch]
(proxy-anchor: one scalar for the batch). Under a `tf.distribute` strategy the local
samples are the anchors against the global batch (`pairwise.global_pairs`); an anchor
without a positive or a negative in the global batch gets 0, as in the contrastive loss.
Masks are constants (mining picks pairs, gradients flow through the picked scores).
Distances, miners and reducers are the parts of `distances`, `miners`, `reducers`.
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_labels
from supcon_tf.losses import distances, miners, reducers
from supcon_tf.losses.contrastive import masked_logsumexp
from supcon_tf.losses.pairwise import check_embeddings, global_pairs
from supcon_tf.validation import check_choice, check_positive

TRIPLET_MINING = miners.TRIPLET_MINERS
TRIPLET_AVERAGES = ("pairs", "anchors")


def _log1p_sum_exp(values, mask):
    """Row-wise log(1 + sum_{mask} exp(values)) (0 on empty rows) and whether non-empty."""
    log_sum, nonempty = masked_logsumexp(values, mask)
    return ops.where(nonempty, ops.softplus(log_sum), 0.0), nonempty


def _reduce_per_anchor(loss, labels, reducer):
    """A per-anchor loss through `reducer` (None: the mean over all anchors, as is)."""
    if reducer is None:
        return loss
    return reducers.get(reducer)(ops.expand_dims(loss, 1), ops.ones_like(loss)[:, None], labels)


def check_triplet_options(margin, mining, distance, average="pairs", reducer=None):
    """The triplet loss's options as objects: (miner, distance, reducer)."""
    check_positive("margin", margin, allow_zero=True)
    check_choice("average", average, TRIPLET_AVERAGES)
    miner = miners.check_output(miners.get(mining, "mining"), "triplets", "TripletLoss")
    if reducer is None:
        one_per_anchor = isinstance(miner, (miners.BatchHardMiner, miners.BatchEasyHardMiner))
        reducer = "per_anchor" if one_per_anchor or average == "anchors" else "mean"
    return miner, distances.get(distance), reducers.get(reducer)


def triplet_loss(embeddings, labels, *, margin=0.2, mining="batch_hard", distance="cosine",
                 soft_margin=False, average="pairs", reducer=None, memory=None):
    """Triplet loss per anchor, shape [batch]: [margin + d(a, p) - d(a, n)]_+ per triplet.

    `mining`: a triplet miner (`supcon_tf.losses.miners`) or its name. "batch_hard"
    (the default; Hermans et al. 2017): per anchor, the farthest positive and the
    nearest negative. "semi_hard" (Schroff et al. 2015, FaceNet; TF-Addons'
    `triplet_semihard_loss` rule): every positive with the nearest negative farther than
    it, else the farthest negative. Also "batch_easy_hard", "all", "distance_weighted".
    `reducer` (`supcon_tf.losses.reducers`): by default "per_anchor" for the miners with
    one triplet per anchor (Hermans et al.: the mean over the batch's anchors, 0 for an
    anchor without a triplet) and for `average="anchors"`; otherwise "mean" over the
    triplets (`average="pairs"`, TF-Addons' mean over all (anchor, positive) pairs of
    the global batch). `soft_margin=True` replaces the hinge by log(1 + exp(d(a, p) -
    d(a, n))) (Hermans et al.; `margin` is then unused). `distance`
    (`supcon_tf.losses.distances`, a similarity s used as 1 - s or -s): "cosine" (the
    default), "squared_l2" and "l2" on the embeddings as given, "l2_unit" (pytorch-
    metric-learning's default), "dot", or an object. `memory`: the cross-batch memory's
    (embeddings, labels, valid), more references (`pairwise.global_pairs`).
    """
    miner, distance, reducer = check_triplet_options(margin, mining, distance, average,
                                                     reducer)
    embeddings, labels = check_embeddings(embeddings, labels)
    references, positives, negatives = global_pairs(embeddings, labels, memory)
    d = distance.dissimilarity(embeddings, references)

    def hinge(x):
        return ops.softplus(x) if soft_margin else ops.relu(x + float(margin))

    triplets = miner(d, positives, negatives, embeddings, references)
    if triplets.dense is None:
        d_an = ops.take_along_axis(d, triplets.negative_index, axis=1)
        return reducer(hinge(d - d_an), triplets.positive, labels)
    terms = hinge(ops.expand_dims(d, 2) - ops.expand_dims(d, 1))
    rows = ops.shape(d)[0]
    return reducer(ops.reshape(terms, (rows, -1)), ops.reshape(triplets.dense, (rows, -1)),
                   labels)


def check_multi_similarity_options(alpha, beta, base, epsilon, distance="cosine",
                                   miner=None, reducer=None):
    check_positive("alpha", alpha)
    check_positive("beta", beta)
    check_positive("epsilon", epsilon, allow_zero=True)
    del base  # Any threshold in [-1, 1] or beyond is meaningful.
    return (distances.require_similarity(distance, "MultiSimilarityLoss"),
            miners.MultiSimilarityMiner(epsilon) if miner is None else miners.get(miner),
            None if reducer is None else reducers.get(reducer))


def multi_similarity_loss(embeddings, labels, *, alpha=2.0, beta=50.0, base=0.5,
                          epsilon=0.1, distance="cosine", miner=None, reducer=None,
                          memory=None):
    """Multi-similarity loss (Wang et al., CVPR 2019, Eq. 12 with the mining of Eq. 10-11).

    With S the similarities (`distance`: "cosine", the paper's, or "dot"), an anchor
    keeps the pairs its miner keeps (default `MultiSimilarityMiner(epsilon)`: the
    negatives with S_ik + epsilon > min over its positives of S_ij, and the positives
    with S_ij - epsilon < max over its negatives of S_ik); its loss is
    1/alpha log(1 + sum_P exp(-alpha (S_ij - base))) + 1/beta log(1 + sum_N exp(beta
    (S_ik - base))), 0 when either kept set is empty (as the official code skips it).
    Default reducer: the mean over all anchors of the batch (the paper's Eq. 12,
    1/m sum_i); `reducer` takes any of `supcon_tf.losses.reducers`.
    """
    distance, miner, reducer = check_multi_similarity_options(alpha, beta, base, epsilon,
                                                              distance, miner, reducer)
    embeddings, labels = check_embeddings(embeddings, labels)
    references, positives, negatives = global_pairs(embeddings, labels, memory)
    s = distance.similarity(embeddings, references)
    kept = miners.mine_pairs(miner, distance.dissimilarity(embeddings, references),
                             positives, negatives, embeddings, references)
    alpha, beta, base = float(alpha), float(beta), float(base)
    positive_term, has_positive = _log1p_sum_exp(-alpha * (s - base), kept.positive)
    negative_term, has_negative = _log1p_sum_exp(beta * (s - base), kept.negative)
    loss = positive_term / alpha + negative_term / beta
    loss = ops.where(ops.logical_and(has_positive, has_negative), loss, 0.0)
    return _reduce_per_anchor(loss, labels, reducer)


def check_circle_options(gamma, margin, distance="cosine", miner=None, reducer=None):
    check_positive("gamma", gamma)
    check_positive("margin", margin, allow_zero=True)
    return (distances.require_similarity(distance, "CircleLoss"),
            None if miner is None else miners.get(miner),
            None if reducer is None else reducers.get(reducer))


def circle_loss(embeddings, labels, *, gamma=80.0, margin=0.4, distance="cosine", miner=None,
                reducer=None, memory=None):
    """Circle loss (Sun et al., CVPR 2020, Eq. 6 with the margins of Eq. 8) per anchor.

    With similarities s (`distance`: "cosine", the paper's, or "dot"), alpha_p =
    [1 + m - s_p]_+ and alpha_n = [s_n + m]_+ (constants, as in the official code),
    Delta_p = 1 - m and Delta_n = m: log(1 + sum_N exp(gamma alpha_n (s_n - Delta_n))
    sum_P exp(-gamma alpha_p (s_p - Delta_p))) over all pairs, or those of `miner`;
    0 for an anchor without a positive or a negative. Defaults as Keras' `Circle` loss;
    default reducer: the mean over all anchors (the paper's batch mean).
    """
    distance, miner, reducer = check_circle_options(gamma, margin, distance, miner, reducer)
    embeddings, labels = check_embeddings(embeddings, labels)
    references, positives, negatives = global_pairs(embeddings, labels, memory)
    s = distance.similarity(embeddings, references)
    if miner is not None:
        positives, negatives = miners.mine_pairs(
            miner, distance.dissimilarity(embeddings, references), positives, negatives,
            embeddings, references)
    gamma, margin = float(gamma), float(margin)
    alpha_p = ops.stop_gradient(ops.relu(1.0 + margin - s))
    alpha_n = ops.stop_gradient(ops.relu(s + margin))
    log_p, has_positive = masked_logsumexp(-gamma * alpha_p * (s - (1.0 - margin)), positives)
    log_n, has_negative = masked_logsumexp(gamma * alpha_n * (s - margin), negatives)
    valid = ops.logical_and(has_positive, has_negative)
    loss = ops.where(valid, ops.softplus(ops.where(valid, log_p + log_n, 0.0)), 0.0)
    return _reduce_per_anchor(loss, labels, reducer)


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
