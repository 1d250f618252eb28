"""SwAV (Caron et al., NeurIPS 2020): online clustering with swapped assignments."""

import keras
from keras import ops

from supcon_tf.heads import Prototypes
from supcon_tf.losses import SwAVLoss
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.methods.queue import FeatureQueue
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


@register
class SwAV(ContrastiveModel):
    """Projections scored against `num_prototypes` prototypes; codes by Sinkhorn-Knopp.

    `y_pred["scores"]` [batch, views, K] holds the cosines of the L2-normalized
    projections with the L2-normalized prototypes; `SwAVLoss` computes the codes
    of the first `assign_views` views (the global crops: with multi-crop batches
    ([b, 2, H, W, C], [b, 6, h, w, C]) the global group comes first) on the global
    batch and predicts each from every other view. The prototypes get no gradient
    for the first `freeze_prototypes_steps` training steps (the paper freezes them
    for the first epoch: pass the number of steps in one epoch); the step count is
    a model variable, so it is checkpointed and resumed. Labels are unused.

    `queue_size` > 0 keeps, per global crop, a FIFO queue (`FeatureQueue`) of the
    projections of the last `queue_size` samples of the global batch (the paper's
    queue for batches smaller than the number of prototypes: 3840 at batch 256);
    from step `queue_start_steps` on (the paper starts it at epoch 15) the queued
    features, scored against the current prototypes, join each Sinkhorn-Knopp as
    extra samples (the rows written so far). The queues are model variables:
    checkpointed and resumed, saved in `.keras` files.
    """

    min_views = 2
    default_loss = SwAVLoss
    step_state = "the step count (prototype freeze, queue start) and the queues"

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 num_prototypes=3000, freeze_prototypes_steps=0, queue_size=0,
                 queue_start_steps=0, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        self.prototypes = Prototypes(num_prototypes, name="prototypes")
        self.num_prototypes = self.prototypes.num_prototypes
        check_positive("freeze_prototypes_steps", freeze_prototypes_steps, allow_zero=True)
        self.freeze_prototypes_steps = int(freeze_prototypes_steps)
        self.train_steps = keras.Variable(0, dtype="int32", trainable=False,
                                          name="swav_train_steps")
        check_positive("queue_size", queue_size, allow_zero=True)
        check_positive("queue_start_steps", queue_start_steps, allow_zero=True)
        self.queue_size = int(queue_size)
        self.queue_start_steps = int(queue_start_steps)
        self.queues = []

    @property
    def assign_views(self):
        return getattr(self.method_loss, "assign_views", 2)

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(self.head.compute_output_shape((None, None))[-1])
        if not self.prototypes.built:
            self.prototypes.build((None, dim))
        if self.queue_size and not self.queues:
            self.queues = [FeatureQueue(self.queue_size, dim, name=f"queue{i}")
                           for i in range(self.assign_views)]

    def call(self, inputs, training=False):
        outputs = super().call(inputs, training=training)
        if not isinstance(outputs, dict):
            return outputs  # Images: the representation.
        gate = 1.0
        if training:
            gate = ops.cast(self.train_steps >= self.freeze_prototypes_steps, "float32")
            self.train_steps.assign(self.train_steps + 1)
        outputs["scores"] = self.prototypes(outputs["projection"], gate=gate)
        return outputs

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        if not self.queues:
            return self.method_loss(y, y_pred["scores"], sample_weight)
        # Queued features scored against the current prototypes (no gradient: codes).
        queue_scores = ops.stack([self.prototypes(q.values, gate=0.0) for q in self.queues])
        started = ops.cast(self.train_steps > self.queue_start_steps, "float32")
        mask = ops.cast(self.queues[0].filled, "float32") * started
        return self.method_loss(y, dict(scores=y_pred["scores"], queue_scores=queue_scores,
                                        queue_mask=mask), sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training:  # After the loss has read the queues.
            for i, queue in enumerate(self.queues):
                queue.enqueue(y_pred["projection"][:, i])
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(num_prototypes=self.num_prototypes,
                      freeze_prototypes_steps=self.freeze_prototypes_steps,
                      queue_size=self.queue_size, queue_start_steps=self.queue_start_steps)
        return config
