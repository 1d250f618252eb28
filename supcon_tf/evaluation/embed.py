"""Model outputs over a labelled dataset, with each output kept next to its label.

Every evaluation tool (kNN monitor, linear-evaluation report, embedding pictures)
needs the same thing: run a model in inference mode over `(images, labels)` data
and get the outputs and the labels in the same order. `predict_with_labels` does
it through `Model.predict` on a small wrapper that passes the labels through the
model, so the labels stay aligned with the outputs even when a `tf.data` pipeline
shuffles, and the pass is batched, compiled and distributed like any `predict`
(under the strategy whose scope the model was built in).
"""

import contextlib
import logging
import sys

import keras
import numpy as np

from supcon_tf.inputs import class_ids as as_class_ids  # The one label rule.
from supcon_tf.validation import check_positive


class _PassLabels(keras.Model):
    """`((images, labels)) -> (model(images), labels)`: labels ride along with the batch."""

    def __init__(self, model, name="pass_labels", **kwargs):
        super().__init__(name=name, **kwargs)
        self.inner = model

    def call(self, inputs, training=False):
        images, labels = inputs
        return self.inner(images, training=False), labels


class _NoRetracingWarning(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning during predictions.

    Each predictor traces its own predict function, once per batch shape (the last,
    smaller batch is a second one). TensorFlow counts traces by the traced code, so
    the many models an evaluation predicts with read to it as one function retraced
    in a loop, and it warns of a cost that is not there.
    """

    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_retracing():
    logger, quiet = logging.getLogger("tensorflow"), _NoRetracingWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def is_dataset(data):
    """True for a `tf.data.Dataset` (without importing TensorFlow when it is not loaded)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def check_trained(model, what="model"):
    """Raises ValueError unless `model` is a built Keras layer/model (it has weights)."""
    if model is None or not getattr(model, "built", False) or not model.weights:
        raise ValueError(
            f"`{what}` has no trained weights (received {type(model).__name__} that was never "
            f"built or trained). Pretrain it first, or load it from a workdir that holds one."
        )
    return model


class LabelledPredictor:
    """Runs `model` in inference mode over labelled data; see `predict_with_labels`.

    Keep one per model when predicting repeatedly (e.g. every epoch): its compiled
    predict function is traced once and reused.
    """

    def __init__(self, model):
        self.model = model
        strategy = None
        if keras.backend.backend() == "tensorflow":
            strategy = getattr(model, "distribute_strategy", None)
        if strategy is not None:
            with strategy.scope():
                self._wrapper = _PassLabels(model)
        else:
            self._wrapper = _PassLabels(model)

    def __call__(self, data, batch_size=256, verbose=0):
        check_positive("batch_size", batch_size)
        if is_dataset(data):
            spec = data.element_spec
            if not isinstance(spec, tuple) or len(spec) < 2:
                raise ValueError(
                    "`data` must yield batches `(images, labels)`; received a dataset with "
                    f"element_spec {spec}."
                )
            inputs = data.map(lambda x, y, *_: ((x, y),))
            with _quiet_retracing():
                outputs, labels = self._wrapper.predict(inputs, verbose=verbose)
        else:
            if not isinstance(data, (tuple, list)) or len(data) != 2:
                raise ValueError(
                    "`data` must be a tuple `(images, labels)` of arrays or a tf.data.Dataset "
                    f"of such batches; received {type(data).__name__}."
                )
            images, labels = np.asarray(data[0]), np.asarray(data[1])
            if len(images) != len(labels):
                raise ValueError(
                    f"`data` holds {len(images)} images but {len(labels)} labels; they must "
                    "match."
                )
            with _quiet_retracing():
                outputs, labels = self._wrapper.predict((images, labels),
                                                        batch_size=batch_size, verbose=verbose)
        outputs = keras.tree.map_structure(lambda o: np.asarray(o, np.float32), outputs)
        return outputs, as_class_ids(labels)


def predict_with_labels(model, data, batch_size=256, verbose=0):
    """Returns `(outputs, labels)` of `model` in inference mode over labelled `data`.

    `data` is a tuple `(images, labels)` of arrays, or a `tf.data.Dataset` of
    batches `(images, labels)`. `outputs` is float32 [n, ...] (or a structure of
    them), `labels` int64 class ids [n].
    """
    return LabelledPredictor(model)(data, batch_size=batch_size, verbose=verbose)
