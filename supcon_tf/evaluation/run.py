"""Everything an evaluation of a finished run writes, in one call (`supcon-tf --mode=eval`)."""

import contextlib
import json
import os

import keras
import numpy as np

from supcon_tf.evaluation.embed import check_trained, is_dataset, predict_with_labels
from supcon_tf.evaluation.plots import plot_embedding
from supcon_tf.evaluation.projector import write_projector
from supcon_tf.evaluation.report import linear_eval_report
from supcon_tf.evaluation.retrieval import retrieval_metrics
from supcon_tf.validation import check_positive


def take_arrays(data, n):
    """Up to `n` samples of labelled `data` as arrays `(images, labels)`, in data order."""
    check_positive("n", n)
    if not is_dataset(data):
        return np.asarray(data[0])[:n], np.asarray(data[1])[:n]
    images, labels, count = [], [], 0
    for x, y, *_ in data.as_numpy_iterator():
        images.append(x)
        labels.append(y)
        count += len(x)
        if count >= n:
            break
    if not images:
        raise ValueError("`data` holds no samples.")
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]


class _Embedder(keras.Model):
    """`head(encoder(images))` in inference mode: the embedding a metric method trains."""

    def __init__(self, encoder, head, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.head = encoder, head

    def call(self, images, training=False):
        return self.head(self.encoder(images, training=False), training=False)


def retrieval_report(encoder, eval_data, reference_data=None, head=None, batch_size=256):
    """{"representation": metrics[, "embedding": metrics]} of `retrieval_metrics`: the
    evaluation data against `reference_data` (None: leave-one-out within it)."""
    models = {"representation": encoder}
    if head is not None:
        strategy = getattr(encoder, "distribute_strategy", None)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            models["embedding"] = _Embedder(encoder, head, name="embedder")
    result = {}
    for name, model in models.items():
        query, query_labels = predict_with_labels(model, eval_data, batch_size=batch_size)
        refs = (None, None) if reference_data is None else predict_with_labels(
            model, reference_data, batch_size=batch_size)
        result[name] = retrieval_metrics(query, query_labels, *refs)
    return result


def evaluate_run(outdir, encoder, eval_data, class_names=None, classifier=None, config=None,
                 method="tsne", sample=2000, projector_sample=5000, seed=0, batch_size=256,
                 reference_data=None, head=None, retrieval=None, extra=None):
    """Writes the evaluation of a trained encoder (and classifier) into `outdir`.

    - with a `classifier`: the linear-evaluation report (`linear_eval_report`):
      report.json, report.md, confusion_matrix.png;
    - with `retrieval` (default: when `reference_data` is given): Recall@1/2/4/8,
      mAP@R and R-precision of the representation (and of `head`'s embedding) of
      `eval_data` against `reference_data` (None: leave-one-out), in the report or, without a classifier, `retrieval.json`;
    - `extra`: a method's own test metrics, in the report (with a classifier);
    - `embedding_<method>.png`: a 2-D map of the representation of `sample`
      evaluation samples, coloured by class;
    - `projector/`: TensorBoard projector files for `projector_sample` samples
      (sprite included for images up to TensorBoard's size limit).
    `eval_data`: `(images, labels)` arrays or a `tf.data.Dataset` of such batches.
    Returns a dict of the written paths (and the report, when there is one).
    """
    check_trained(encoder, "encoder")
    if classifier is not None:
        check_trained(classifier, "classifier")
    os.makedirs(outdir, exist_ok=True)
    result = {}
    scores = None
    if retrieval or (retrieval is None and reference_data is not None):
        scores = retrieval_report(encoder, eval_data, reference_data, head, batch_size)
        result["retrieval"] = scores
    if classifier is not None:
        result["report"] = linear_eval_report(outdir, classifier, eval_data, class_names,
                                              config=config, batch_size=batch_size,
                                              retrieval=scores, extra=extra)
    elif scores is not None:
        path = os.path.join(outdir, "retrieval.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(scores, f, indent=2)
        result["retrieval_file"] = path
    images, labels = take_arrays(eval_data, max(sample, projector_sample))
    embeddings, labels = predict_with_labels(encoder, (images, labels), batch_size=batch_size)
    picture = plot_embedding(embeddings, labels, os.path.join(outdir, f"embedding_{method}.png"),
                             method=method, class_names=class_names, sample=sample, seed=seed)
    result["embedding_plot"] = picture["path"]
    result["projector"] = write_projector(os.path.join(outdir, "projector"), embeddings, labels,
                                          images=images, class_names=class_names,
                                          sample=projector_sample, seed=seed)
    return result
