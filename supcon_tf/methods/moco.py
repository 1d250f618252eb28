"""MoCo v2 (He et al., CVPR 2020; Chen et al. 2020, "Improved Baselines with Momentum
Contrastive Learning") and SupCon with a labelled queue (`SupConMoCo`).

Per step (Algorithm 1 of MoCo, with the teacher update moved to the step's start;
see `supcon_tf.methods.teacher`): queries q = online head(encoder(view 0)), keys
k = key head(key encoder(view 1)) from the EMA teacher, the InfoNCE loss over
[k+, queue] at temperature 0.2, then the keys of the **global** batch are enqueued
(`FeatureQueue`). With `symmetric=True` view 1 is a query against view 0's key too,
the two losses are averaged and both views' keys are enqueued (2 x batch rows).

Key-encoder BatchNorm. MoCo shuffles the samples across GPUs before the key
encoder, so that a query and its positive key do not share the same per-device
BatchNorm statistics (the "cheating" through intra-batch communication the paper
describes). Under a multi-replica `tf.distribute` strategy this model does the same:
the key views of the global batch are gathered, permuted (the same permutation on
every replica, from the teacher's step counter), each replica encodes its slice of
the permuted batch, and the keys are gathered back into the original order. On
one device, and on JAX (where a jit step sees the global batch as one array), the
key encoder's BatchNorm already uses the statistics of the whole batch, as
synchronized BN does (SimCLR's and MoCo v3's answer to the same leak); a
permutation would not change them, so nothing is shuffled.
"""

from keras import ops

from supcon_tf import distribute
from supcon_tf.losses.queue import MoCoLoss, QueueSupConLoss
from supcon_tf.methods.momentum import MomentumModel
from supcon_tf.methods.queue import FeatureQueue
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


def shuffled_forward(fn, images, seed):
    """`fn(images)` with the global batch permuted across replicas (TF, > 1 replica)."""
    if distribute.num_replicas_in_sync() == 1:
        return fn(images)
    import tensorflow as tf

    everyone, offset = distribute.cross_replica_concat(images)
    local = tf.shape(images)[0]
    order = tf.argsort(tf.random.stateless_uniform(
        tf.shape(everyone)[:1], seed=tf.stack([tf.cast(seed, tf.int32), 14])))
    mine = tf.gather(everyone, order[offset:offset + local])
    encoded, _ = distribute.cross_replica_concat(fn(mine))
    restored = tf.gather(encoded, tf.argsort(order))
    return restored[offset:offset + local]


@register
class MoCo(MomentumModel):
    """MoCo v2: query encoder + projection MLP, EMA key side, a queue of keys.

    Args (besides `MomentumModel`'s): `queue_size` (K: 65,536 ImageNet, 4,096
    CIFAR; at least the global batch, x2 when symmetric), `symmetric`,
    `shuffle_key_batch_norm` (see the module docstring). The projection head must
    L2-normalize (the default `ProjectionHead` does).
    """

    min_views = 2
    default_loss = MoCoLoss
    with_labels = False
    step_state = "the teacher (EMA) and the queue of keys"

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 queue_size=4096, momentum=0.999, momentum_schedule="constant",
                 total_steps=None, symmetric=False, shuffle_key_batch_norm=True,
                 predictor_hidden_dims=None, predictor_batch_norm=True, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         momentum=momentum, momentum_schedule=momentum_schedule,
                         total_steps=total_steps,
                         predictor_hidden_dims=predictor_hidden_dims,
                         predictor_batch_norm=predictor_batch_norm, **kwargs)
        check_positive("queue_size", queue_size)
        self.queue_size = int(queue_size)
        self.symmetric = bool(symmetric)
        self.shuffle_key_batch_norm = bool(shuffle_key_batch_norm)
        self.queue = None

    def target_views(self, num_views):
        return (0, 1) if self.symmetric else (1,)

    def build_method_state(self, projection_dim):
        if self.queue is None:
            self.queue = FeatureQueue(self.queue_size, projection_dim,
                                      with_labels=self.with_labels, name="queue")

    def encode_target(self, images, training):
        def encode(x):
            return self.teacher(self.encoder, x, training=training)

        if not (training and self.shuffle_key_batch_norm):
            return encode(images)
        return shuffled_forward(encode, images, self.teacher.step.value)

    def pairs(self):
        """(query view, index into `target`) of each loss term."""
        return ((0, 1), (1, 0)) if self.symmetric else ((0, 0),)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        queries = y_pred["projection"]
        if "prediction" in y_pred:  # MoCo v3-style predictor: normalized like the keys.
            queries = ops.normalize(y_pred["prediction"], axis=-1)
        losses = []
        for query_view, key_index in self.pairs():
            inputs = dict(query=queries[:, query_view], key=y_pred["target"][:, key_index],
                          queue=self.queue.values, queue_mask=self.queue.filled)
            if self.with_labels:
                inputs["queue_labels"] = self.queue.labels
            losses.append(self.method_loss(y, inputs, sample_weight))
        return ops.mean(ops.stack(losses)) if len(losses) > 1 else losses[0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training:  # After the loss has read the queue.
            keys = y_pred["target"]
            num = keys.shape[1]
            flat = ops.reshape(ops.transpose(keys, (1, 0, 2)), (-1, keys.shape[-1]))
            labels = None
            if self.with_labels:
                labels = ops.tile(ops.reshape(ops.cast(y, "int32"), (-1,)), (num,))
            self.queue.enqueue(flat, labels)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(queue_size=self.queue_size, symmetric=self.symmetric,
                      shuffle_key_batch_norm=self.shuffle_key_batch_norm)
        return config


@register
class SupConMoCo(MoCo):
    """SupCon with a labelled queue: queued keys of the anchor's class are positives.

    The queue stores each key's class id; the loss is SupCon's L^sup_out with the
    queries as anchors and the global batch's keys plus the queue as contrasts
    (`supcon_tf.losses.queue.queue_supcon_loss`). Batches must be (views, labels).
    """

    default_loss = QueueSupConLoss
    with_labels = True
    requires_labels = True  # Checked by ContrastiveModel before the step.
