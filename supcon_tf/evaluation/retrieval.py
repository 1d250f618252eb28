"""Retrieval metrics of embeddings: Recall@k, mAP@R and R-precision (Musgrave et al. 2020).

Each query ranks the reference set by cosine similarity (ties: the lower reference
index first). With R the number of references of the query's class:
  * Recall@k: the fraction of queries with at least one same-class reference among
    their k nearest (the metric-learning "Recall@k" of Oh Song et al. 2016);
  * R-precision: the fraction of same-class references among the R nearest;
  * mAP@R: (1/R) sum_{i<=R} P(i) rel(i), with P(i) the precision at rank i and rel(i)
    whether rank i is of the query's class.
The queries are the test split against the train split (`ref_*`), or the test split
against itself, each query leaving itself out. Queries whose class has no reference
are left out of the means (`num_queries` counts the others). Computed in blocks of
`chunk_size` queries x references (`knn.nearest_neighbours`, `keras.ops`: TF or JAX):
memory O(chunk_size * (chunk_size + k_max)), k_max = max(max(ks), largest R).
"""

import numpy as np

from supcon_tf.evaluation.embed import as_class_ids
from supcon_tf.evaluation.knn import nearest_neighbours
from supcon_tf.inputs import check_finite
from supcon_tf.validation import check_positive

DEFAULT_KS = (1, 2, 4, 8)


def _check_set(embeddings, labels, where):
    embeddings = np.asarray(check_finite(f"{where}_emb", embeddings), np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"`{where}_emb` must have rank 2, shape [n, dim]; received shape "
                         f"{embeddings.shape}.")
    labels = as_class_ids(labels, f"{where}_labels")
    if len(labels) != len(embeddings):
        raise ValueError(f"`{where}_labels` must hold one label per embedding "
                         f"({len(embeddings)}); received {len(labels)}.")
    return embeddings, labels


def retrieval_metrics(query_emb, query_labels, ref_emb=None, ref_labels=None, ks=DEFAULT_KS,
                      chunk_size=1024):
    """{"recall@k" for k in ks, "map@r", "r_precision", "num_queries"} (see module).

    `ref_emb=None`: leave-one-out within the query set.
    """
    query_emb, query_labels = _check_set(query_emb, query_labels, "query")
    leave_one_out = ref_emb is None
    if leave_one_out:
        if ref_labels is not None:
            raise ValueError("`ref_labels` needs `ref_emb`; received ref_emb=None.")
        ref_emb, ref_labels = query_emb, query_labels
    else:
        ref_emb, ref_labels = _check_set(ref_emb, ref_labels, "ref")
        if ref_emb.shape[1] != query_emb.shape[1]:
            raise ValueError(f"`query_emb` and `ref_emb` must have the same dim; received "
                             f"shapes {query_emb.shape} and {ref_emb.shape}.")
    ks = tuple(int(check_positive("ks[i]", k)) for k in ks)
    check_positive("chunk_size", chunk_size)
    num_refs = len(ref_emb) - (1 if leave_one_out else 0)
    if not ks or max(ks) > num_refs:
        raise ValueError(f"`ks` must be non-empty and at most the {num_refs} references of "
                         f"each query; received ks={ks}.")
    classes, counts = np.unique(ref_labels, return_counts=True)
    per_class = dict(zip(classes.tolist(), counts.tolist()))
    relevant = np.array([per_class.get(int(c), 0) for c in query_labels], np.int64)
    relevant -= 1 if leave_one_out else 0
    k_max = min(num_refs, max(max(ks), int(relevant.max(initial=0))))

    hits = {k: 0.0 for k in ks}
    total_map, total_precision, used = 0.0, 0.0, 0
    for start, _, ids in nearest_neighbours(query_emb, ref_emb, k_max, chunk_size,
                                            leave_one_out=leave_one_out):
        labels = query_labels[start:start + len(ids)]
        r = relevant[start:start + len(ids)]
        rel = ref_labels[ids] == labels[:, None]  # [n, k_max]
        has = r > 0
        ranks = np.arange(1, k_max + 1)
        within_r = ranks[None] <= r[:, None]
        for k in ks:
            hits[k] += float(np.sum(np.any(rel[has, :k], axis=1)))
        precision_at = np.cumsum(rel, axis=1) / ranks[None]
        safe_r = np.maximum(r, 1)
        total_map += float(np.sum((np.sum(precision_at * rel * within_r, 1) / safe_r)[has]))
        total_precision += float(np.sum((np.sum(rel * within_r, 1) / safe_r)[has]))
        used += int(np.sum(has))
    result = {f"recall@{k}": hits[k] / used if used else float("nan") for k in ks}
    result["map@r"] = total_map / used if used else float("nan")
    result["r_precision"] = total_precision / used if used else float("nan")
    result["num_queries"] = used
    return result
