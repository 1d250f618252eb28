"""A searchable index of embeddings, in the manner of TF Similarity's `index` / `lookup`.

    index = EmbeddingIndex(ranking="cosine")
    index.add(embeddings, labels, payloads=paths)        # payloads: any JSON values
    result = index.search(queries, k=5)                  # exact, in blocks (keras.ops)
    index.save("/tmp/digits_index"); EmbeddingIndex.load("/tmp/digits_index")
    index.calibrate(test_embeddings, test_labels, target_precision=0.99)

Exact search is `knn.nearest_neighbours` (the retrieval metrics' own: blocks of
`chunk_size` queries x references, running top-k; ties rank the lower index first).
`search(..., method="faiss")` asks a faiss-cpu HNSW index (M=32, efConstruction 64,
efSearch `ef_search` = 128) instead: approximate, built at the first such search; only
when faiss is installed (`pip install supcon-tf[ann]`).
`calibrate` picks the distance threshold below which a query's nearest neighbour is
called a match (verification: same class or not) at the target precision.
A directory holds embeddings.npy (float32), labels.npy (int64), payloads.json and
index.json (format version, dim, ranking, threshold).
"""

import json
import os

import numpy as np

from supcon_tf.evaluation.knn import RANKINGS, nearest_neighbours
from supcon_tf.inputs import check_finite
from supcon_tf.validation import check_choice, check_int, check_probability

FORMAT_VERSION = 1
SEARCH_METHODS = ("exact", "faiss")


def _distances(scores, ranking):
    """Nearest-neighbour scores -> distances: 1 - cosine, or the Euclidean distance."""
    if ranking == "cosine":
        return 1.0 - scores
    return np.sqrt(np.maximum(-scores, 0.0))


class EmbeddingIndex:
    """Embeddings with their class ids and payloads; exact (or faiss) k-NN search."""

    def __init__(self, dim=None, ranking="cosine"):
        self.ranking = check_choice("ranking", ranking, RANKINGS)
        self.dim = None if dim is None else check_int("dim", dim, 1)
        self.embeddings = np.zeros((0, self.dim or 0), np.float32)
        self.labels = np.zeros((0,), np.int64)
        self.payloads = []
        self.threshold = None
        self.ef_search = 128
        self._faiss = None

    def __len__(self):
        return len(self.embeddings)

    def _check_rows(self, name, rows):
        rows = np.asarray(rows, np.float32)
        if rows.ndim != 2:
            raise ValueError(f"`{name}` must have rank 2, shape [n, dim]; received shape "
                             f"{rows.shape}.")
        if self.dim is not None and rows.shape[1] != self.dim:
            raise ValueError(f"`{name}` must have dim {self.dim} (the index's); received "
                             f"shape {rows.shape}.")
        return np.asarray(check_finite(name, rows), np.float32)

    def add(self, embeddings, labels=None, payloads=None):
        """Appends rows [n, dim] with class ids [n] (-1 when None) and payloads [n]."""
        embeddings = self._check_rows("embeddings", embeddings)
        n = len(embeddings)
        labels = (np.full(n, -1, np.int64) if labels is None
                  else np.asarray(labels).astype(np.int64).reshape(-1))
        if len(labels) != n:
            raise ValueError(f"`labels` must hold one class id per embedding ({n}); "
                             f"received {len(labels)}.")
        payloads = [None] * n if payloads is None else list(payloads)
        if len(payloads) != n:
            raise ValueError(f"`payloads` must hold one entry per embedding ({n}); "
                             f"received {len(payloads)}.")
        json.dumps(payloads)  # Saved as JSON: a payload that is not raises here.
        self.dim = embeddings.shape[1]
        self.embeddings = np.concatenate([self.embeddings.reshape(-1, self.dim), embeddings])
        self.labels = np.concatenate([self.labels, labels])
        self.payloads += payloads
        self._faiss = None

    def search(self, queries, k=5, chunk_size=1024, method="exact"):
        """{"ids", "distances", "labels", "payloads"} of each query's k nearest rows.

        ids / labels [n, k], distances [n, k] (1 - cosine, or L2), payloads a list of
        lists; nearest first, ties: the lower id first (exact search).
        """
        check_choice("method", method, SEARCH_METHODS)
        if not len(self):
            raise ValueError("The index is empty: `add` embeddings before `search`.")
        queries = self._check_rows("queries", queries)
        k = check_int("k", k, 1)
        if k > len(self):
            raise ValueError(f"`k` must be at most the {len(self)} rows of the index; "
                             f"received k={k}.")
        if method == "faiss":
            scores, ids = self._faiss_search(queries, k)
        else:
            parts = list(nearest_neighbours(queries, self.embeddings, k, chunk_size,
                                            ranking=self.ranking))
            scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, k))
            ids = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, k), int)
        return {"ids": ids, "distances": _distances(scores.astype(np.float64), self.ranking),
                "labels": self.labels[ids],
                "payloads": [[self.payloads[j] for j in row] for row in ids]}

    def _faiss_search(self, queries, k):
        try:
            import faiss
        except ImportError as e:
            raise ValueError("`method='faiss'` needs faiss-cpu (`pip install faiss-cpu`); "
                             "received method='faiss' without it.") from e
        rows = self.embeddings
        if self.ranking == "cosine":
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True),
                                           1e-12)
        if self._faiss is None:
            metric = (faiss.METRIC_INNER_PRODUCT if self.ranking == "cosine"
                      else faiss.METRIC_L2)
            self._faiss = faiss.IndexHNSWFlat(self.dim, 32, metric)
            self._faiss.hnsw.efConstruction = 64
            self._faiss.add(np.ascontiguousarray(rows, np.float32))
        # The breadth of the graph search: recall against speed (faiss's default is 16).
        self._faiss.hnsw.efSearch = max(self.ef_search, k)
        scores, ids = self._faiss.search(np.ascontiguousarray(queries, np.float32), k)
        return (scores if self.ranking == "cosine" else -scores), ids.astype(np.int64)

    def calibrate(self, queries, labels, target_precision=0.99):
        """The largest distance threshold at which "nearest neighbour within the threshold
        is of the query's class" holds with precision >= `target_precision`.

        Queries sorted by their nearest distance; precision(t) is the fraction of same-
        class nearest neighbours among the queries within t, recall(t) the fraction of
        queries within t. Sets and returns {"threshold", "precision", "recall",
        "target_precision", "ranking", "num_queries"} (threshold None: never reached).
        """
        check_probability("target_precision", target_precision)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        found = self.search(queries, k=1)
        if len(labels) != len(found["ids"]):
            raise ValueError(f"`labels` must hold one class id per query ({len(found['ids'])})"
                             f"; received {len(labels)}.")
        distances = found["distances"][:, 0]
        order = np.argsort(distances, kind="stable")
        correct = (found["labels"][:, 0] == labels)[order]
        precision = np.cumsum(correct) / np.arange(1, len(order) + 1)
        # A threshold must take every query at its distance: only the last of equal ones.
        last = np.append(distances[order][1:] != distances[order][:-1], True)
        ok = np.nonzero((precision >= target_precision) & last)[0]
        result = {"target_precision": float(target_precision), "ranking": self.ranking,
                  "num_queries": int(len(order)), "threshold": None, "precision": None,
                  "recall": 0.0}
        if len(ok):
            i = int(ok[-1])
            result.update(threshold=float(distances[order][i]), precision=float(precision[i]),
                          recall=(i + 1) / len(order))
        self.threshold = result["threshold"]
        return result

    def save(self, directory):
        """Writes the index into `directory` (created if needed)."""
        os.makedirs(directory, exist_ok=True)
        np.save(os.path.join(directory, "embeddings.npy"), self.embeddings)
        np.save(os.path.join(directory, "labels.npy"), self.labels)
        with open(os.path.join(directory, "payloads.json"), "w") as f:
            json.dump(self.payloads, f)
        with open(os.path.join(directory, "index.json"), "w") as f:
            json.dump({"format_version": FORMAT_VERSION, "dim": self.dim, "size": len(self),
                       "ranking": self.ranking, "threshold": self.threshold}, f, indent=2)

    @classmethod
    def load(cls, directory):
        """The index `save` wrote into `directory`."""
        meta_path = os.path.join(directory, "index.json")
        if not os.path.exists(meta_path):
            raise ValueError(f"`directory` must hold an index written by "
                             f"EmbeddingIndex.save (index.json); received {directory!r}.")
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"Index format {meta.get('format_version')!r} in {directory!r}; "
                             f"this version reads format {FORMAT_VERSION}.")
        index = cls(dim=meta["dim"], ranking=meta["ranking"])
        with open(os.path.join(directory, "payloads.json")) as f:
            payloads = json.load(f)
        embeddings = np.load(os.path.join(directory, "embeddings.npy"))
        if len(embeddings):
            index.add(embeddings, np.load(os.path.join(directory, "labels.npy")), payloads)
        index.threshold = meta.get("threshold")
        return index
