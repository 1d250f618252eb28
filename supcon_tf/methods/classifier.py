"""Stage 2 (a linear classifier on a frozen encoder) and the cross-entropy baseline."""

import copy

import keras
from keras import ops

from supcon_tf.heads import LinearHead
from supcon_tf.methods.base import restore_compile
from supcon_tf.methods.guards import GuardedFit, nan_unless_finite
from supcon_tf.registry import register
from supcon_tf.validation import check_int


def classification_metrics(num_classes):
    """Top-1 and top-5 accuracy (top-k capped at the number of classes)."""
    return [
        keras.metrics.SparseCategoricalAccuracy(name="top1"),
        keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
    ]


@register
class LinearClassifier(GuardedFit, keras.Model):
    """Logits of a linear head on the encoder's representation; batches `(images, labels)`.

    With `freeze_encoder=True` (linear evaluation) the encoder is set non-trainable,
    runs in inference mode (BatchNorm statistics are not updated) and sits behind a
    stop-gradient. Note that freezing sets `encoder.trainable = False` on the
    encoder object it is given. `fit` checks its arrays and labels (class ids in
    [0, num_classes)) first and stops on a non-finite loss (`methods.guards`).
    """

    requires_labels = True

    def __init__(self, encoder, num_classes, freeze_encoder=True, head=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.freeze_encoder = bool(freeze_encoder)
        if self.freeze_encoder:
            self.encoder.trainable = False
        self.head = head if head is not None else LinearHead(self.num_classes)

    def call(self, images, training=False):
        if len(images.shape) != 4:
            raise ValueError(
                "`images` must have rank 4, shape [batch, height, width, channels]; "
                f"received shape {tuple(images.shape)}."
            )
        if self.freeze_encoder:
            representation = ops.stop_gradient(self.encoder(images, training=False))
        else:
            representation = self.encoder(images, training=training)
        return self.head(representation)

    def check_labels(self, labels):
        if labels.ndim == 1 and labels.size and labels.max() >= self.num_classes:
            raise ValueError(
                f"`y` (labels) of {type(self).__name__}.fit must be class ids in "
                f"[0, {self.num_classes}) for num_classes={self.num_classes}; received a "
                f"maximum of {labels.max()}."
            )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        return nan_unless_finite(loss, x, y_pred) if self.check_finite else loss

    def compile(self, optimizer="sgd", loss="auto", metrics="auto", **kwargs):
        """`loss="auto"`: cross-entropy on logits; `metrics="auto"`: top-1 and top-5."""
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = classification_metrics(self.num_classes)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            head=keras.saving.serialize_keras_object(self.head),
            num_classes=self.num_classes,
            freeze_encoder=self.freeze_encoder,
        )
        return config

    def compile_from_config(self, config):
        restore_compile(self, config)

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        for key in ("encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@register
class CrossEntropyClassifier(LinearClassifier):
    """The paper's baseline: encoder and linear head trained end to end with cross-entropy."""

    def __init__(self, encoder, num_classes, freeze_encoder=False, head=None, **kwargs):
        super().__init__(encoder, num_classes, freeze_encoder=freeze_encoder, head=head,
                         **kwargs)
