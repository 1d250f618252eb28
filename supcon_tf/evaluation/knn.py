"""Weighted k-nearest-neighbour classification of embeddings, and its monitor callback.

The classifier of instance discrimination (Wu et al., CVPR 2018): embeddings are
L2-normalized, a query's k most cosine-similar reference samples vote for their
class with weight exp(similarity / temperature), and the class with the largest
summed weight wins. It needs no training, so it tracks the quality of a
representation cheaply while pretraining runs.
"""

import keras
import numpy as np
from keras import ops

from supcon_tf.evaluation.embed import LabelledPredictor, as_class_ids
from supcon_tf.inputs import check_finite
from supcon_tf.validation import check_choice, check_int, check_number, check_positive


def _check_k(k, reference_size):
    check_positive("k", k)
    if k > reference_size:
        raise ValueError(
            f"`k` must be <= the number of reference samples ({reference_size}); received "
            f"k={k}. Use a larger reference set or a smaller k."
        )


def _normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _pad(x, block):
    """`x` padded with zeros along axis 0 to a whole number of `block` rows."""
    extra = -len(x) % block
    return np.concatenate([x, np.zeros((extra,) + x.shape[1:], x.dtype)]) if extra else x


RANKINGS = ("cosine", "l2")


def nearest_neighbours(query_emb, ref_emb, k, chunk_size=1024, leave_one_out=False,
                       ranking="cosine"):
    """Yields `(start, similarities [n, k], reference ids [n, k])` per block of queries.

    The `k` most cosine-similar reference rows of each query, most similar first; equal
    similarities rank the lower reference index first. `ranking="l2"`: the `k` nearest
    by Euclidean distance of the rows as given, with similarities -||q - r||^2. `leave_one_out=True` (queries
    and references the same set) skips each query's own row. Blocks of `chunk_size`
    queries against `chunk_size` references at a time with a running top-k: memory
    O(chunk_size * (chunk_size + k)) however large the sets.
    """
    check_choice("ranking", ranking, RANKINGS)
    query_emb = np.asarray(check_finite("query_emb", query_emb), np.float32)
    ref_emb = np.asarray(check_finite("ref_emb", ref_emb), np.float32)
    # Every block has the same shapes (the sets are padded to whole blocks), so
    # backends that compile per shape (JAX) compile each op once.
    q_block, r_block = min(chunk_size, max(len(query_emb), 1)), min(chunk_size, len(ref_emb))
    cosine = ranking == "cosine"
    prepare = _normalize if cosine else (lambda x: x)
    refs = _pad(prepare(ref_emb), r_block)
    # L2: -||q - r||^2 = 2 q.r - ||r||^2 - ||q||^2 (the last term added per query).
    ref_norms = np.sum(np.square(refs, dtype=np.float64), 1).astype(np.float32)
    valid = _pad(np.ones(len(ref_emb), bool), r_block)
    blocks = [  # On the device once, reused by every query block.
        (ops.convert_to_tensor(refs[r:r + r_block].T),
         ops.convert_to_tensor(valid[None, r:r + r_block]),
         ops.convert_to_tensor(np.arange(r, r + r_block, dtype=np.int32)[None]),
         ops.convert_to_tensor(ref_norms[None, r:r + r_block]))
        for r in range(0, len(refs), r_block)
    ]
    for start in range(0, len(query_emb), q_block):
        block_queries = _pad(prepare(query_emb[start:start + q_block]), q_block)
        queries = ops.convert_to_tensor(block_queries)
        query_norms = np.sum(np.square(block_queries, dtype=np.float64), 1)[:, None]
        query_ids = ops.convert_to_tensor(
            np.arange(start, start + q_block, dtype=np.int32)[:, None])
        top_sim = ops.full((q_block, k), -np.inf, "float32")
        top_ids = ops.zeros((q_block, k), "int32")
        for block, block_valid, ids, norms in blocks:
            keep = block_valid
            if leave_one_out:
                keep = ops.logical_and(keep, ops.not_equal(ids, query_ids))
            sim = ops.matmul(queries, block)
            if not cosine:
                sim = 2.0 * sim - norms
            sim = ops.where(keep, sim, -np.inf)
            top_sim, where = ops.top_k(ops.concatenate([top_sim, sim], axis=1), k=k)
            all_ids = ops.concatenate([top_ids, ops.broadcast_to(ids, (q_block, r_block))], 1)
            top_ids = ops.take_along_axis(all_ids, where, axis=1)
        n = min(q_block, len(query_emb) - start)
        top = ops.convert_to_numpy(top_sim)[:n]
        if not cosine:
            top = np.minimum(top - query_norms[:n].astype(np.float32), 0.0)
        yield (start, top,
               ops.convert_to_numpy(top_ids)[:n].astype(np.int64))


def knn_predict(query_emb, ref_emb, ref_labels, num_classes, k=200, temperature=0.1,
                chunk_size=1024):
    """Weighted-kNN class predictions; returns `(predictions [n] int64, scores [n, classes])`.

    `scores[i, c]` is the summed weight exp(cos / temperature) of query i's k
    nearest reference samples of class c. Work is done in blocks of `chunk_size`
    queries against `chunk_size` reference samples at a time, keeping a running
    top-k, so memory is O(chunk_size * (chunk_size + k)) however large the sets.
    """
    check_positive("num_classes", num_classes)
    check_positive("temperature", temperature)
    check_positive("chunk_size", chunk_size)
    query_emb = np.asarray(query_emb, np.float32)
    ref_emb = np.asarray(ref_emb, np.float32)
    ref_labels = as_class_ids(ref_labels, "ref_labels")
    if query_emb.ndim != 2 or ref_emb.ndim != 2 or query_emb.shape[1] != ref_emb.shape[1]:
        raise ValueError(
            "`query_emb` and `ref_emb` must be [n, dim] with the same dim; received shapes "
            f"{query_emb.shape} and {ref_emb.shape}."
        )
    if len(ref_labels) != len(ref_emb):
        raise ValueError(
            f"`ref_labels` must hold one label per reference embedding ({len(ref_emb)}); "
            f"received {len(ref_labels)}."
        )
    if len(ref_labels) and (ref_labels.min() < 0 or ref_labels.max() >= num_classes):
        raise ValueError(
            f"`ref_labels` must lie in [0, num_classes={num_classes}); received labels in "
            f"[{ref_labels.min()}, {ref_labels.max()}]."
        )
    _check_k(k, len(ref_emb))

    predictions, scores = [], []
    for _, top_sim, top_ids in nearest_neighbours(query_emb, ref_emb, k, chunk_size):
        weights = np.exp(top_sim.astype(np.float64) / temperature)
        n = len(top_ids)
        # Votes per (query, class) by one bincount over flat indices query * classes + class.
        flat = np.arange(n)[:, None] * num_classes + ref_labels[top_ids]
        votes = np.bincount(flat.ravel(), weights.ravel(), minlength=n * num_classes)
        votes = votes.reshape(n, num_classes)
        scores.append(votes)
        predictions.append(np.argmax(votes, axis=-1))
    if not predictions:
        return np.zeros((0,), np.int64), np.zeros((0, num_classes), np.float32)
    return (np.concatenate(predictions).astype(np.int64),
            np.concatenate(scores).astype(np.float32))


def knn_accuracy(query_emb, query_labels, ref_emb, ref_labels, num_classes=None, k=200,
                 temperature=0.1, chunk_size=1024):
    """Top-1 accuracy of `knn_predict` on labelled queries (num_classes inferred if None)."""
    query_labels = as_class_ids(query_labels, "query_labels")
    ref_labels = as_class_ids(ref_labels, "ref_labels")
    if num_classes is None:
        num_classes = int(max(query_labels.max(initial=0), ref_labels.max(initial=0))) + 1
    predictions, _ = knn_predict(query_emb, ref_emb, ref_labels, num_classes, k=k,
                                 temperature=temperature, chunk_size=chunk_size)
    if len(predictions) != len(query_labels):
        raise ValueError(
            f"`query_labels` must hold one label per query embedding ({len(predictions)}); "
            f"received {len(query_labels)}."
        )
    return float(np.mean(predictions == query_labels)) if len(predictions) else float("nan")


class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted-kNN top-1 accuracy of the current representation every N epochs.

    At the end of every `every_n_epochs`-th epoch (and the last one), embeds
    `reference_data` and `heldout_data` (each a tuple `(images, labels)` of arrays
    or a `tf.data.Dataset` of such batches) with `encoder` (default: the fitted
    model's `encoder`, or the model itself when it has none), classifies the
    held-out embeddings by weighted kNN against the reference ones, and writes the
    accuracy to `logs[name]`, so the progress bar, `History` and a `TensorBoard`
    callback listed *after* this one all receive it. Embedding runs through
    `Model.predict`, hence batched and under the model's distribution strategy.
    """

    def __init__(self, reference_data, heldout_data, every_n_epochs=1, k=200, temperature=0.1,
                 batch_size=256, num_classes=None, encoder=None, chunk_size=1024,
                 name="knn_top1"):
        super().__init__()
        check_positive("every_n_epochs", every_n_epochs)
        check_positive("batch_size", batch_size)
        check_positive("temperature", temperature)
        check_positive("chunk_size", chunk_size)
        if num_classes is not None:
            check_positive("num_classes", num_classes)
        check_positive("k", k)
        if isinstance(reference_data, (tuple, list)) and len(reference_data) == 2:
            _check_k(k, len(reference_data[1]))  # Early, before any training is spent.
        self.reference_data = reference_data
        self.heldout_data = heldout_data
        self.every_n_epochs = check_int("every_n_epochs", every_n_epochs, minimum=1)
        self.k = check_int("k", k, minimum=1)
        self.temperature = check_number("temperature", temperature)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.num_classes = num_classes
        self.encoder = encoder
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.name = name
        self.history = []  # (epoch, accuracy) pairs
        self._predictor = None

    def _encoder(self):
        if self.encoder is not None:
            return self.encoder
        encoder = getattr(self.model, "encoder", None)
        return self.model if encoder is None else encoder

    def evaluate(self):
        """The kNN top-1 accuracy of the current encoder on the held-out data."""
        encoder = self._encoder()
        if self._predictor is None or self._predictor.model is not encoder:
            self._predictor = LabelledPredictor(encoder)
        ref_emb, ref_labels = self._predictor(self.reference_data, self.batch_size)
        query_emb, query_labels = self._predictor(self.heldout_data, self.batch_size)
        return knn_accuracy(query_emb, query_labels, ref_emb, ref_labels,
                            num_classes=self.num_classes, k=self.k,
                            temperature=self.temperature, chunk_size=self.chunk_size)

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == self.params.get("epochs") if self.params else False
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        accuracy = self.evaluate()
        self.history.append((epoch, accuracy))
        if logs is not None:
            logs[self.name] = accuracy
