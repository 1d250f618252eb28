"""Retrieval metrics against hand-computed cases (ties included) and a brute-force ranking."""

import numpy as np
import pytest

from supcon_tf.evaluation import retrieval_metrics
from tolerance import assert_close


def test_leave_one_out_with_ties_hand_values():
    # Three identical embeddings: ties rank the lower index first.
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 1, 0, 1])
    got = retrieval_metrics(x, labels, ks=(1, 2))
    # Rankings: q0: 1, 2, 3 (miss, hit); q1: 0, 2, 3 (miss, miss, hit); q2: 0, 1, 3 (hit);
    # q3: 0, 1, 2 (all at 0: miss, hit). R = 1 for every query.
    assert got["num_queries"] == 4
    for key, want in (("recall@1", 1 / 4), ("recall@2", 3 / 4), ("map@r", 1 / 4),
                      ("r_precision", 1 / 4)):
        assert_close(got[key], want, dtype="float32", terms=4, err_msg=key)


def test_query_against_references_hand_values():
    query = np.array([[1.0, 0.0]])
    refs = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [0.0, -1.0]])
    ref_labels = np.array([1, 0, 0, 1, 2])
    got = retrieval_metrics(query, [0], refs, ref_labels, ks=(1, 2, 4))
    # Ranks: 0 (miss), 1 (hit), 2 (hit); R = 2: P(2) = 1/2 -> mAP@R = (0 + 1/2) / 2.
    want = {"recall@1": 0.0, "recall@2": 1.0, "recall@4": 1.0, "map@r": 0.25,
            "r_precision": 0.5, "num_queries": 1, "mrr": 0.5, "precision@1": 0.0,
            "precision@2": 0.5}
    for key, value in want.items():
        assert_close(got[key], value, dtype="float32", terms=2, err_msg=key)


def _brute_force(query, query_labels, refs, ref_labels, ks, leave_one_out, ranking="cosine"):
    if ranking == "cosine":
        sims = (query / np.linalg.norm(query, axis=1, keepdims=True)) @ (
            refs / np.linalg.norm(refs, axis=1, keepdims=True)).T
    else:
        sims = -np.sum((query[:, None] - refs[None]) ** 2, axis=-1)
    recall, maps, precisions = {k: [] for k in ks}, [], []
    precision_k, reciprocal = {k: [] for k in ks}, []
    k_max = max(max(ks), max(int(np.sum(ref_labels == c)) - leave_one_out
                             for c in set(query_labels.tolist())))
    for i in range(len(query)):
        order = [j for j in np.argsort(-sims[i], kind="stable") if not (leave_one_out and j == i)]
        rel = [ref_labels[j] == query_labels[i] for j in order]
        r = sum(rel)
        if r == 0:
            continue
        for k in ks:
            recall[k].append(any(rel[:k]))
            precision_k[k].append(sum(rel[:k]) / k)
        first = rel.index(True)
        reciprocal.append(1.0 / (first + 1) if first < k_max else 0.0)
        precisions.append(sum(rel[:r]) / r)
        maps.append(sum(sum(rel[:n + 1]) / (n + 1) for n in range(r) if rel[n]) / r)
    out = {f"recall@{k}": np.mean(v) for k, v in recall.items()}
    out.update({f"precision@{k}": np.mean(v) for k, v in precision_k.items()})
    out.update({"map@r": np.mean(maps), "r_precision": np.mean(precisions),
                "mrr": np.mean(reciprocal)})
    return out, len(maps)


@pytest.mark.parametrize("leave_one_out, ranking", [(False, "cosine"), (True, "cosine"),
                                                    (False, "l2")])
def test_blocked_matches_brute_force(leave_one_out, ranking):
    rng = np.random.default_rng(0)
    query, query_labels = rng.standard_normal((37, 5)), rng.integers(0, 4, 37)
    refs, ref_labels = rng.standard_normal((53, 5)), rng.integers(0, 3, 53)  # No class 3.
    args = (query, query_labels) if leave_one_out else (query, query_labels, refs, ref_labels)
    want, used = _brute_force(*((query, query_labels, query, query_labels) if leave_one_out
                                else args), ks=(1, 2, 4, 8), leave_one_out=leave_one_out,
                               ranking=ranking)
    for chunk in (7, 1024):
        got = retrieval_metrics(*args, chunk_size=chunk, ranking=ranking)
        assert got["num_queries"] == used and got["ranking"] == ranking
        if not leave_one_out:
            assert used == int(np.sum(query_labels < 3))  # Class 3 has no reference.
        for key, value in want.items():
            assert_close(got[key], value, dtype="float32", terms=64, err_msg=f"{key} {chunk}")


def test_bad_input_errors():
    x = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"`query_emb` must have rank 2.*\(4, 2, 1\)"):
        retrieval_metrics(x[..., None], [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"`ks` must be .* at most the 3 references"):
        retrieval_metrics(x, [0, 0, 1, 1], ks=(1, 8))
    with pytest.raises(ValueError, match=r"`ref_labels` must hold one label per embedding"):
        retrieval_metrics(x, [0, 0, 1, 1], x, [0, 1])
    with pytest.raises(ValueError, match=r"`ks\[i\]` must be > 0"):
        retrieval_metrics(x, [0, 0, 1, 1], ks=(0,))


def test_clustering_nmi_of_separated_and_shuffled_classes():
    from supcon_tf.evaluation.retrieval import clustering_nmi

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    centres = np.eye(3) * 10
    x = centres[labels] + 0.1 * rng.standard_normal((60, 3))
    for ranking in ("cosine", "l2"):
        assert_close(clustering_nmi(x, labels, ranking=ranking), 1.0, dtype="float64",
                     terms=60)
    assert clustering_nmi(x, rng.permutation(labels)) < 0.2
