"""The online linear probe: a classifier trained on the frozen representation during pretraining.

As in SimCLR's TF2 code, a linear head learns to classify the representation
while the encoder pretrains; its accuracy, logged every epoch, says how linearly
separable the representation is becoming without a separate stage-2 run. The
head sees the representation behind a stop-gradient, so its cross-entropy,
although added to the training loss, trains the head alone: the encoder's
gradients are exactly those of the contrastive loss.
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.heads.linear import LinearHead
from supcon_tf.registry import register
from supcon_tf.validation import check_int


@register
class OnlineProbe(keras.layers.Layer):
    """A stop-gradient linear head on one view's representation, with its loss and metrics.

    `probe(representation)` takes the representation [batch, num_views, r] (or
    [batch, r]) and returns logits [batch, num_classes] for view `view`.
    `probe.probe_loss(labels, logits)` returns the cross-entropy (scaled for
    distribution like any Keras loss) and updates the metrics `probe_loss` and
    `probe_top1`, which a model holding the probe reports every epoch.
    """

    def __init__(self, num_classes, view=0, head=None, **kwargs):
        kwargs.setdefault("name", "probe")
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.view = check_int("view", view, minimum=0)
        self.head = head if head is not None else LinearHead(self.num_classes,
                                                             stop_gradient=True,
                                                             name="linear")
        self.cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.loss_tracker = keras.metrics.Mean(name="probe_loss")
        self.top1 = keras.metrics.SparseCategoricalAccuracy(name="probe_top1")

    def build(self, input_shape):
        if not self.head.built:  # A deserialized head arrives built.
            self.head.build(tuple(input_shape[:1]) + tuple(input_shape[-1:]))

    def call(self, representation):
        if len(representation.shape) == 3:
            representation = representation[:, self.view]
        return self.head(ops.stop_gradient(representation))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def probe_loss(self, labels, logits, sample_weight=None):
        """Cross-entropy of the probe; raises ValueError when the batch carries no labels."""
        if labels is None:
            raise ValueError(
                "The online linear probe needs labels: batches must be `(views, labels)` with "
                "class ids [batch], but they carry no labels. Pass labels, or build the model "
                "without `probe`."
            )
        if len(labels.shape) == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if len(labels.shape) != 1:
            raise ValueError(
                "The online linear probe needs class ids [batch]; received labels of shape "
                f"{tuple(labels.shape)} (multi-hot labels have no single class to predict)."
            )
        labels = ops.cast(labels, "int32")
        logits = ops.cast(logits, "float32")
        loss = self.cross_entropy(labels, logits, sample_weight)
        # Keras losses divide by the replica count for the gradient sum; the
        # tracker wants the per-replica mean back.
        self.loss_tracker.update_state(loss * distribute.num_replicas_in_sync())
        self.top1.update_state(labels, logits, sample_weight)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, view=self.view,
                      head=keras.saving.serialize_keras_object(self.head))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["head"] = keras.saving.deserialize_keras_object(config["head"])
        return cls(**config)


def as_probe(probe):
    """None, an `OnlineProbe`, a number of classes, or a head (e.g. `LinearHead`) -> probe."""
    if probe is None or isinstance(probe, OnlineProbe):
        return probe
    if isinstance(probe, bool):
        raise ValueError(f"`probe` must be None, a number of classes or a layer; received "
                         f"probe={probe!r}.")
    if isinstance(probe, int):
        return OnlineProbe(probe)
    if isinstance(probe, LinearHead):
        return OnlineProbe(probe.num_classes, head=probe)
    raise ValueError(
        "`probe` must be None, a number of classes, a LinearHead or an OnlineProbe; received "
        f"{type(probe).__name__}."
    )
