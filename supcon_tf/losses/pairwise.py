"""What every metric-learning loss shares: checked inputs, pairwise scores, pair masks.

The metric losses (triplet, multi-similarity, circle) compare each local sample (the
anchors) with every sample of the global batch: `global_pairs` gathers embeddings and
labels once through `supcon_tf.distribute.cross_replica_concat` and builds the
positive / negative masks with the contrastive loss's own `positive_pair_mask`, so
SupCon and the metric losses agree on what a positive is. Scores come from a
`supcon_tf.losses.distances` object.
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_labels, check_rank, check_same_size
from supcon_tf.losses.contrastive import positive_pair_mask
from supcon_tf.losses.distances import CosineSimilarity


def check_embeddings(embeddings, labels, where="embeddings"):
    """Converts and checks `embeddings` [batch, dim] and class ids `labels` [batch]."""
    embeddings = check_rank(where, ops.convert_to_tensor(embeddings), 2, "[batch, dim]")
    if labels is None:
        raise ValueError("`labels` are required by metric-learning losses (class ids "
                         "[batch]); received labels=None.")
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if len(labels.shape) != 1:
        raise ValueError("`labels` must be class ids, shape [batch]; received shape "
                         f"{tuple(labels.shape)}.")
    check_same_size("labels", labels, where, embeddings)
    check_labels("labels", labels)
    check_finite(where, embeddings)
    dtype = "float64" if embeddings.dtype == "float64" else "float32"
    return ops.cast(embeddings, dtype), labels


def pairwise_similarity(a, b):
    """Cosine similarities [len(a), len(b)] of the rows of `a` and `b`."""
    return CosineSimilarity().pairwise(a, b)


def global_pairs(embeddings, labels, memory=None):
    """(references, positives, negatives) for the local anchors.

    Masks are float [local, references]: positives share the anchor's class (the
    anchor itself excluded), negatives do not. Under a `tf.distribute` strategy the
    references are every replica's batch, in replica order; `memory` = (embeddings
    [M, dim], class ids [M], valid [M] bool), a cross-batch memory, appends M more
    references (the rows not valid are in neither mask).
    """
    global_embeddings, offset = distribute.cross_replica_concat(embeddings)
    global_labels = distribute.cross_replica_concat(labels)[0]
    local, total = ops.shape(embeddings)[0], ops.shape(global_embeddings)[0]
    diagonal = ops.one_hot(ops.arange(local) + offset, total, dtype=embeddings.dtype)
    same = positive_pair_mask(labels, global_labels, diagonal)
    positives, negatives = same - diagonal, 1.0 - same
    if memory is None:
        return global_embeddings, positives, negatives
    values, memory_labels, valid = memory
    valid = ops.expand_dims(ops.cast(valid, embeddings.dtype), 0)
    same = ops.cast(ops.equal(ops.expand_dims(ops.cast(labels, "int32"), 1),
                              ops.expand_dims(ops.cast(memory_labels, "int32"), 0)),
                    embeddings.dtype)
    references = ops.concatenate([global_embeddings, ops.cast(values, embeddings.dtype)], 0)
    return (references, ops.concatenate([positives, same * valid], 1),
            ops.concatenate([negatives, (1.0 - same) * valid], 1))
