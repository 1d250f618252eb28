"""NNCLR (Dwibedi et al., ICCV 2021): nearest neighbours from a support set as positives.

Per step (Algorithm 1 of the paper): z = projector(encoder(view)), p = predictor(z);
the positive of each view is the nearest neighbour (cosine) of its z in the support
set, a `FeatureQueue` of past projections; the loss is the symmetric InfoNCE of
`supcon_tf.losses.nnclr` (each NN against the other view's predictions of the global
batch, temperature 0.1); then the projections of view 0 of the **global** batch are
enqueued (the paper's `update(Q, z1)`). The loss of a step reads the support set as it
was before the step.
"""

from supcon_tf.heads import ProjectionHead
from supcon_tf.losses.nnclr import NNCLRLoss
from supcon_tf.methods.base import ContrastiveModel, with_prediction
from supcon_tf.methods.queue import FeatureQueue
from supcon_tf.registry import register
from supcon_tf.validation import check_int


@register
class NNCLR(ContrastiveModel):
    """NNCLR. Labels are unused.

    Args (besides `ContrastiveModel`'s):
      queue_size: rows of the support set (paper: 98,304 on ImageNet); at least the
        global batch size. Saved, checkpointed and resumed with the model.
      predictor_hidden_dims: hidden widths of the predictor MLP (paper: one of 4096);
        its output is as wide as the projection (paper: 256).
      predictor_batch_norm: BatchNorm after the predictor's hidden layers (paper: yes);
        synchronized across replicas when the projector's is.
    The default projector is the paper's 3-layer MLP, hidden 2048, output 256, with
    BatchNorm on every layer (`ProjectionHead((2048, 2048), 256, output_batch_norm=True,
    normalize=False)`: the loss and the support set normalize).
    """

    min_views = 2
    default_loss = NNCLRLoss
    step_state = "the support set (queue)"

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 queue_size=98304, predictor_hidden_dims=(4096,), predictor_batch_norm=True,
                 **kwargs):
        if head is None:
            head = ProjectionHead((2048, 2048), 256, output_batch_norm=True, normalize=False)
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        self.queue_size = check_int("queue_size", queue_size, minimum=1)
        self.predictor_hidden_dims = [check_int(f"predictor_hidden_dims[{i}]", d, minimum=1)
                                      for i, d in enumerate(predictor_hidden_dims)]
        self.predictor_batch_norm = bool(predictor_batch_norm)
        self.predictor = None
        self.queue = None

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(self.head.compute_output_shape((None, None))[-1])
        if self.predictor is None:
            self.predictor = ProjectionHead(self.predictor_hidden_dims, dim,
                                            use_batch_norm=self.predictor_batch_norm,
                                            sync_batch_norm=getattr(self.head,
                                                                    "sync_batch_norm", False),
                                            normalize=False, name="predictor")
            self.predictor.build((None, dim))
        if self.queue is None:
            self.queue = FeatureQueue(self.queue_size, dim, name="queue")

    def call(self, inputs, training=False):
        return with_prediction(super().call(inputs, training=training), self.predictor, training)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        inputs = dict(projection=y_pred["projection"], prediction=y_pred["prediction"],
                      support=self.queue.values, support_mask=self.queue.filled)
        return self.method_loss(y, inputs, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training:  # After the loss has read the support set.
            self.queue.enqueue(y_pred["projection"][:, 0])
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(queue_size=self.queue_size,
                      predictor_hidden_dims=self.predictor_hidden_dims,
                      predictor_batch_norm=self.predictor_batch_norm)
        return config
