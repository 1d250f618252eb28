"""Evaluation: kNN monitor, online linear probe, linear-evaluation report, pictures.

While pretraining: `KNNMonitor` (a callback logging weighted-kNN top-1) and the
`OnlineProbe` a `ContrastiveModel(..., probe=num_classes)` trains on the
stop-gradient representation. After stage 2: `linear_eval_report`, and
`retrieval_metrics` (Recall@k, precision@k, MRR, mAP@R; `clustering_nmi`), and
`EmbeddingIndex` (k-NN search of embeddings with labels and payloads). Pictures:
`plot_embedding` (t-SNE / UMAP map) and `write_projector` (TensorBoard files).
`evaluate_run` writes all of it for a finished run.
"""

from supcon_tf.evaluation.embed import (
    LabelledPredictor,
    as_class_ids,
    check_trained,
    predict_with_labels,
)
from supcon_tf.evaluation.knn import KNNMonitor, knn_accuracy, knn_predict, nearest_neighbours
from supcon_tf.evaluation.plots import embedding_map, plot_confusion_matrix, plot_embedding
from supcon_tf.heads.probe import OnlineProbe
from supcon_tf.evaluation.projector import sprite_image, write_projector
from supcon_tf.evaluation.report import (
    classification_summary,
    flatten_config,
    key_settings,
    linear_eval_report,
    markdown_report,
)
from supcon_tf.evaluation.index import EmbeddingIndex
from supcon_tf.evaluation.retrieval import clustering_nmi, retrieval_metrics
from supcon_tf.evaluation.run import evaluate_run, take_arrays

__all__ = [
    "EmbeddingIndex",
    "KNNMonitor",
    "LabelledPredictor",
    "OnlineProbe",
    "as_class_ids",
    "check_trained",
    "classification_summary",
    "clustering_nmi",
    "embedding_map",
    "evaluate_run",
    "flatten_config",
    "key_settings",
    "knn_accuracy",
    "knn_predict",
    "linear_eval_report",
    "markdown_report",
    "nearest_neighbours",
    "plot_confusion_matrix",
    "plot_embedding",
    "predict_with_labels",
    "retrieval_metrics",
    "sprite_image",
    "take_arrays",
    "write_projector",
]
