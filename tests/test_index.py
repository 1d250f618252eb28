"""EmbeddingIndex: exact search = brute-force NumPy (ties as the retrieval metrics),
save / load, calibration, errors, and faiss's recall against the exact search."""

import numpy as np
import pytest

from supcon_tf.evaluation.index import EmbeddingIndex
from tolerance import assert_close

RNG = np.random.default_rng(0)
REFS = RNG.standard_normal((40, 6)).astype(np.float32)
REFS[10] = REFS[3]  # Exact ties: the lower id ranks first.
REFS[25] = REFS[3]
LABELS = RNG.integers(0, 4, 40)
QUERIES = np.concatenate([REFS[[3, 7]], RNG.standard_normal((9, 6))]).astype(np.float32)


def brute_force(queries, refs, k, ranking):
    q, r = queries.astype(np.float64), refs.astype(np.float64)
    if ranking == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        distances = 1.0 - q @ r.T
    else:
        distances = np.sqrt(np.sum((q[:, None] - r[None]) ** 2, -1))
    ids = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(distances, ids, 1)


@pytest.mark.parametrize("ranking", ["cosine", "l2"])
def test_exact_search_matches_brute_force_with_ties(ranking):
    index = EmbeddingIndex(ranking=ranking)
    index.add(REFS[:20], LABELS[:20], payloads=[f"img{i}.png" for i in range(20)])
    index.add(REFS[20:], LABELS[20:], payloads=[{"id": i} for i in range(20, 40)])
    want_ids, want_distances = brute_force(QUERIES, REFS, 5, ranking)
    for chunk in (4, 1024):
        got = index.search(QUERIES, k=5, chunk_size=chunk)
        np.testing.assert_array_equal(got["ids"], want_ids)
        assert list(got["ids"][0, :3]) == [3, 10, 25]  # The three equal rows, by id.
        # L2: squared (a sqrt near 0, a query equal to a row, loses half the digits).
        power = 1 if ranking == "cosine" else 2
        assert_close(got["distances"] ** power, want_distances ** power, dtype="float32",
                     terms=6, magnitude=np.max(want_distances ** power))
        np.testing.assert_array_equal(got["labels"], LABELS[want_ids])
    assert got["payloads"][1][0] == "img7.png" and got["payloads"][0][2] == {"id": 25}


def test_save_load_round_trip(tmp_path):
    index = EmbeddingIndex(ranking="l2")
    index.add(REFS, LABELS, payloads=[str(i) for i in range(40)])
    index.calibrate(QUERIES[:2], LABELS[[3, 7]], target_precision=0.5)
    index.save(tmp_path / "index")
    loaded = EmbeddingIndex.load(tmp_path / "index")
    assert (loaded.ranking, loaded.dim, len(loaded), loaded.threshold) == (
        "l2", 6, 40, index.threshold)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    a, b = index.search(QUERIES, 3), loaded.search(QUERIES, 3)
    np.testing.assert_array_equal(a["ids"], b["ids"])
    assert a["payloads"] == b["payloads"]
    empty = EmbeddingIndex(dim=6)
    empty.save(tmp_path / "empty")
    assert len(EmbeddingIndex.load(tmp_path / "empty")) == 0


def test_calibrate_matches_a_numpy_statement():
    index = EmbeddingIndex()
    index.add(REFS, LABELS)
    queries = RNG.standard_normal((60, 6)).astype(np.float32)
    query_labels = RNG.integers(0, 4, 60)
    ids, distances = brute_force(queries, REFS, 1, "cosine")
    correct = LABELS[ids[:, 0]] == query_labels
    for target in (0.3, 0.5, 0.9):
        got = index.calibrate(queries, query_labels, target_precision=target)
        best = None
        for t in np.sort(distances[:, 0]):  # The largest threshold with enough precision.
            within = distances[:, 0] <= t
            if correct[within].mean() >= target:
                best = (t, correct[within].mean(), within.mean())
        if best is None:
            assert got["threshold"] is None
            continue
        assert_close([got["threshold"], got["precision"], got["recall"]], best,
                     dtype="float32", terms=6)
        assert got["ranking"] == "cosine" and index.threshold == got["threshold"]


@pytest.mark.parametrize("call, match", [
    (lambda i: EmbeddingIndex().search(QUERIES), r"The index is empty"),
    (lambda i: i.search(QUERIES[:, :4]), r"`queries` must have dim 6 \(the index's\); "
                                         r"received shape \(11, 4\)"),
    (lambda i: i.add(REFS[:, :5]), r"`embeddings` must have dim 6"),
    (lambda i: i.add(np.full((2, 6), np.nan)), r"`embeddings` must be finite; received 12"),
    (lambda i: i.search(np.full((1, 6), np.inf)), r"`queries` must be finite"),
    (lambda i: i.search(QUERIES, k=41), r"`k` must be at most the 40 rows"),
    (lambda i: i.add(REFS[:2], LABELS[:3]), r"`labels` must hold one class id per embedding"),
    (lambda i: EmbeddingIndex(ranking="dot"), r"`ranking` must be one of 'cosine', 'l2'"),
    (lambda i: i.search(QUERIES, method="annoy"), r"`method` must be one of 'exact', 'faiss'"),
    (lambda i: EmbeddingIndex.load("/nonexistent"), r"`directory` must hold an index"),
])
def test_errors_name_the_parameter(call, match):
    index = EmbeddingIndex()
    index.add(REFS, LABELS)
    with pytest.raises(ValueError, match=match):
        call(index)


def test_faiss_recall_at_10_against_exact():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    index = EmbeddingIndex()
    index.add(rng.standard_normal((1000, 16)).astype(np.float32))
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    exact = index.search(queries, 10)["ids"]
    approx = index.search(queries, 10, method="faiss")["ids"]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9
