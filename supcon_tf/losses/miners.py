"""Miners, apart from the losses (as pytorch-metric-learning's `miners`): which pairs count.

A miner looks at the (gradient-free) distances between the local anchors and the
references (the global batch, and the cross-batch memory when there is one) and
returns, as constant masks:

* `Pairs(positive, negative)`: float [anchors, refs] masks of the kept pairs, for the
  pair losses (multi-similarity, circle);
* `Triplets(positive, negative_index)`: the kept (anchor, positive) pairs [anchors,
  refs] and, for each, the index of its one negative (batch-hard, batch-easy-hard,
  semi-hard, distance-weighted); or `Triplets(dense=[anchors, refs, refs])` for
  miners that keep several negatives per pair (all triplets).

Triplet losses take triplets only; pair losses take pairs, or triplets seen as their
(anchor, positive) and (anchor, negative) pairs (as pytorch-metric-learning converts
them). `call(d, positives, negatives, embeddings, references)`: `d` the loss's
dissimilarities (smaller is closer), `positives` / `negatives` the class masks.
Names for `mining=` / `miner=`: see `MINERS`.
"""

import collections

import keras
from keras import ops

from supcon_tf.losses.distances import L2Distance
from supcon_tf.losses.parts import Part, resolve
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive

Pairs = collections.namedtuple("Pairs", "positive negative")


class Triplets(collections.namedtuple("Triplets", "positive negative_index dense")):
    """(anchor, positive) mask with one negative index each, or a dense [a, p, n] mask."""

    def __new__(cls, positive=None, negative_index=None, dense=None):
        return super().__new__(cls, positive, negative_index, dense)

    def as_pairs(self, num_refs):
        """The (anchor, positive) and (anchor, negative) pairs these triplets hold."""
        if self.dense is not None:
            return Pairs(ops.cast(ops.any(self.dense > 0, axis=2), self.dense.dtype),
                         ops.cast(ops.any(self.dense > 0, axis=1), self.dense.dtype))
        picked = ops.one_hot(self.negative_index, num_refs, dtype=self.positive.dtype)
        return Pairs(self.positive,
                     ops.minimum(ops.sum(picked * ops.expand_dims(self.positive, 2), 1), 1.0))


def _argbest(values, mask, largest):
    """Row-wise index of the largest (smallest) `values` where `mask`, and whether any."""
    fill = float("-inf") if largest else float("inf")
    masked = ops.where(mask > 0, values, fill)
    index = ops.argmax(masked, axis=-1) if largest else ops.argmin(masked, axis=-1)
    return ops.cast(index, "int32"), ops.any(mask > 0, axis=-1)


class Miner(Part):
    """Base: `output` is "pairs" or "triplets"; `__call__` returns `Pairs` or `Triplets`."""

    output = "triplets"

    def __call__(self, d, positives, negatives, embeddings=None, references=None):
        return self.call(ops.stop_gradient(d), positives, negatives, embeddings, references)


def _one_per_anchor(d, positives, negatives, positive_largest):
    """One triplet per anchor: the farthest (or nearest) positive, the nearest negative."""
    p, has_p = _argbest(d, positives, largest=positive_largest)
    n, has_n = _argbest(d, negatives, largest=False)
    keep = ops.cast(ops.logical_and(has_p, has_n), d.dtype)
    positive = ops.one_hot(p, ops.shape(d)[1], dtype=d.dtype) * ops.expand_dims(keep, 1)
    return Triplets(positive, ops.broadcast_to(ops.expand_dims(n, 1), ops.shape(d)))


@register
class BatchHardMiner(Miner):
    """Per anchor the farthest positive and the nearest negative (Hermans et al. 2017)."""

    def call(self, d, positives, negatives, embeddings, references):
        return _one_per_anchor(d, positives, negatives, positive_largest=True)


@register
class BatchEasyHardMiner(Miner):
    """Per anchor the nearest (easiest) positive and the nearest (hardest) negative
    (Xuan et al., WACV 2020, "Improved embeddings with easy positive triplet mining")."""

    def call(self, d, positives, negatives, embeddings, references):
        return _one_per_anchor(d, positives, negatives, positive_largest=False)


@register
class SemiHardMiner(Miner):
    """TF-Addons' `triplet_semihard_loss` rule (Schroff et al. 2015, FaceNet): every
    positive p of the anchor with the nearest negative farther than p, else the farthest
    negative. Holds a [anchors, refs, refs] comparison."""

    def call(self, d, positives, negatives, embeddings, references):
        d_ap, d_an = ops.expand_dims(d, 2), ops.expand_dims(d, 1)
        outside = ops.expand_dims(negatives, 1) * ops.cast(ops.greater(d_an, d_ap), d.dtype)
        nearest_outside, has_outside = _argbest(d_an * ops.ones_like(d_ap), outside,
                                                largest=False)
        farthest, has_negative = _argbest(d, negatives, largest=True)
        index = ops.where(has_outside, nearest_outside, ops.expand_dims(farthest, 1))
        return Triplets(positives * ops.expand_dims(ops.cast(has_negative, d.dtype), 1), index)


@register
class AllTripletsMiner(Miner):
    """Every (anchor, positive, negative) of the batch: a dense [anchors, refs, refs] mask."""

    def call(self, d, positives, negatives, embeddings, references):
        return Triplets(dense=ops.expand_dims(positives, 2) * ops.expand_dims(negatives, 1))


@register
class MultiSimilarityMiner(Miner):
    """The pair mining of the multi-similarity loss (Wang et al., CVPR 2019, Eq. 10-11):
    negatives closer than the farthest positive plus `epsilon`, positives farther than
    the nearest negative minus `epsilon` (on the dissimilarity: for cosine, the paper's
    S_ik + epsilon > min S_ij and S_ij - epsilon < max S_ik)."""

    output = "pairs"

    def __init__(self, epsilon=0.1):
        self.epsilon = float(check_positive("epsilon", epsilon, allow_zero=True))

    def call(self, d, positives, negatives, embeddings, references):
        farthest_positive = ops.max(ops.where(positives > 0, d, float("-inf")), axis=1)
        nearest_negative = ops.min(ops.where(negatives > 0, d, float("inf")), axis=1)
        keep_negatives = negatives * ops.cast(
            ops.less(d - self.epsilon, ops.expand_dims(farthest_positive, 1)), d.dtype)
        keep_positives = positives * ops.cast(
            ops.greater(d + self.epsilon, ops.expand_dims(nearest_negative, 1)), d.dtype)
        return Pairs(keep_positives, keep_negatives)

    def get_config(self):
        return {"epsilon": self.epsilon}


def distance_weights(distances, negatives, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """Wu et al. 2017's sampling probabilities [anchors, refs] of the negatives.

    On the unit sphere in `dim` dimensions the pairwise distance has density
    q(d) ~ d^(dim-2) (1 - d^2/4)^((dim-3)/2); a negative is drawn with weight 1/q(d)
    (d clipped below at `cutoff`), zero beyond `nonzero_loss_cutoff` (it could not give
    a loss); rows without such a negative draw uniformly among their negatives.
    """
    d = ops.maximum(distances, cutoff)
    log_q = ((dim - 2.0) * ops.log(d)
             + (dim - 3.0) / 2.0 * ops.log(ops.maximum(1.0 - 0.25 * ops.square(d), 1e-8)))
    allowed = negatives * ops.cast(ops.less(distances, nonzero_loss_cutoff), d.dtype)
    log_w = ops.where(allowed > 0, -log_q, float("-inf"))
    log_w = log_w - ops.max(ops.where(allowed > 0, log_w, -1e30), axis=1, keepdims=True)
    weights = ops.where(allowed > 0, ops.exp(log_w), 0.0)
    has = ops.any(allowed > 0, axis=1, keepdims=True)
    weights = ops.where(has, weights, negatives)
    return ops.divide_no_nan(weights, ops.sum(weights, axis=1, keepdims=True))


@register
class DistanceWeightedMiner(Miner):
    """Distance-weighted sampling (Wu et al., ICCV 2017): for every (anchor, positive),
    one negative drawn with probability `distance_weights` of its L2 distance between
    unit embeddings (whatever the loss's distance). Seeded: `seed` fixes the draws."""

    def __init__(self, cutoff=0.5, nonzero_loss_cutoff=1.4, seed=None):
        self.cutoff = float(check_positive("cutoff", cutoff))
        self.nonzero_loss_cutoff = float(check_positive("nonzero_loss_cutoff",
                                                        nonzero_loss_cutoff))
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self._seeds = keras.random.SeedGenerator(self.seed)

    def call(self, d, positives, negatives, embeddings, references):
        if embeddings is None:
            raise ValueError("DistanceWeightedMiner needs the embeddings (it measures L2 "
                             "distances between unit rows); received embeddings=None.")
        unit = L2Distance(normalize=True).pairwise(ops.stop_gradient(embeddings),
                                                   ops.stop_gradient(references))
        probabilities = distance_weights(unit, negatives, embeddings.shape[-1], self.cutoff,
                                         self.nonzero_loss_cutoff)
        num_refs = ops.shape(d)[1]
        logits = ops.log(ops.maximum(probabilities, 1e-30))
        logits = ops.where(probabilities > 0, logits, float("-inf"))
        has_negative = ops.any(negatives > 0, axis=1)
        logits = ops.where(ops.expand_dims(has_negative, 1), logits, 0.0)
        drawn = keras.random.categorical(logits, num_refs, seed=self._seeds, dtype="int32")
        keep = ops.expand_dims(ops.cast(has_negative, d.dtype), 1)
        return Triplets(positives * keep, drawn)

    def get_config(self):
        return {"cutoff": self.cutoff, "nonzero_loss_cutoff": self.nonzero_loss_cutoff,
                "seed": self.seed}


_NAMED = {
    "batch_hard": BatchHardMiner,
    "batch_easy_hard": BatchEasyHardMiner,
    "semi_hard": SemiHardMiner,
    "all": AllTripletsMiner,
    "multi_similarity": MultiSimilarityMiner,
    "distance_weighted": DistanceWeightedMiner,
}
MINERS = tuple(_NAMED)
TRIPLET_MINERS = tuple(k for k, v in _NAMED.items() if v.output == "triplets")


def get(miner, name="miner"):
    """A `Miner` from an object, its serialized dict or a name of `MINERS`."""
    return resolve(miner, Miner, _NAMED, name)


def check_output(miner, wanted, loss):
    """Raises a ValueError naming the miner when `loss` cannot take what it returns."""
    if wanted == "triplets" and miner.output != "triplets":
        raise ValueError(
            f"{loss} needs triplets, but the miner {miner!r} returns {miner.output}; pass "
            f"a triplet miner ({', '.join(repr(m) for m in TRIPLET_MINERS)}) or use it with "
            "a pair loss (multi-similarity, circle).")
    return miner


def mine_pairs(miner, d, positives, negatives, embeddings, references):
    """The pairs a pair loss uses: the miner's, or its triplets' pairs."""
    mined = miner(d, positives, negatives, embeddings, references)
    return mined.as_pairs(ops.shape(d)[1]) if isinstance(mined, Triplets) else mined

