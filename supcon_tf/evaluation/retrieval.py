"""Retrieval metrics of embeddings: Recall@k, precision@k, MRR, mAP@R, R-precision
(Musgrave et al. 2020), and the NMI of k-means clusters.

Each query ranks the reference set by cosine similarity, or by L2 distance with
`ranking="l2"` (ties: the lower reference index first); the result's "ranking" says
which. With R the number of references of the query's class:
  * Recall@k: the fraction of queries with at least one same-class reference among
    their k nearest (the metric-learning "Recall@k" of Oh Song et al. 2016);
  * precision@k: the fraction of same-class references among the k nearest;
  * MRR: the mean of 1 / rank of the first same-class reference, within the k_max
    nearest (0 beyond; k_max below);
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
from supcon_tf.evaluation.knn import RANKINGS, nearest_neighbours
from supcon_tf.inputs import check_finite
from supcon_tf.validation import check_choice, check_positive

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
                      chunk_size=1024, ranking="cosine"):
    """{"recall@k", "precision@k" for k in ks, "mrr", "map@r", "r_precision",
    "num_queries", "ranking"} (see module).

    `ref_emb=None`: leave-one-out within the query set. `ranking`: "cosine" or "l2".
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
    precision_k = {k: 0.0 for k in ks}
    total_map, total_precision, total_rr, used = 0.0, 0.0, 0.0, 0
    for start, _, ids in nearest_neighbours(query_emb, ref_emb, k_max, chunk_size,
                                            leave_one_out=leave_one_out, ranking=ranking):
        labels = query_labels[start:start + len(ids)]
        r = relevant[start:start + len(ids)]
        rel = ref_labels[ids] == labels[:, None]  # [n, k_max]
        has = r > 0
        ranks = np.arange(1, k_max + 1)
        within_r = ranks[None] <= r[:, None]
        for k in ks:
            hits[k] += float(np.sum(np.any(rel[has, :k], axis=1)))
            precision_k[k] += float(np.sum(np.mean(rel[has, :k], axis=1)))
        first = np.argmax(rel, axis=1)
        total_rr += float(np.sum(np.where(np.any(rel, axis=1), 1.0 / (first + 1), 0.0)[has]))
        precision_at = np.cumsum(rel, axis=1) / ranks[None]
        safe_r = np.maximum(r, 1)
        total_map += float(np.sum((np.sum(precision_at * rel * within_r, 1) / safe_r)[has]))
        total_precision += float(np.sum((np.sum(rel * within_r, 1) / safe_r)[has]))
        used += int(np.sum(has))
    result = {f"recall@{k}": hits[k] / used if used else float("nan") for k in ks}
    result.update({f"precision@{k}": precision_k[k] / used if used else float("nan")
                   for k in ks})
    result["mrr"] = total_rr / used if used else float("nan")
    result["map@r"] = total_map / used if used else float("nan")
    result["r_precision"] = total_precision / used if used else float("nan")
    result["num_queries"] = used
    result["ranking"] = ranking
    return result


def clustering_nmi(embeddings, labels, ranking="cosine", seed=0):
    """NMI between the class ids and k-means clusters (k = number of classes) of the
    embeddings (unit rows for `ranking="cosine"`), as Musgrave et al. report it.

    Needs scikit-learn (KMeans, normalized_mutual_info_score)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    check_choice("ranking", ranking, RANKINGS)
    embeddings, labels = _check_set(embeddings, labels, "query")
    if ranking == "cosine":
        embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1,
                                                            keepdims=True), 1e-12)
    clusters = KMeans(len(np.unique(labels)), n_init=1, random_state=seed).fit_predict(
        embeddings.astype(np.float64))
    return float(normalized_mutual_info_score(labels, clusters))
