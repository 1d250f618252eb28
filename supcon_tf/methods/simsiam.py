"""SimSiam (Chen & He, CVPR 2021): a predictor, stop-gradient, and no negatives."""

import keras

from supcon_tf.heads import ProjectionHead
from supcon_tf.losses import SimSiamLoss, collapse_std
from supcon_tf.methods.base import ContrastiveModel, with_prediction
from supcon_tf.registry import register
from supcon_tf.validation import check_positive


@register
class SimSiam(ContrastiveModel):
    """z = projector(encoder(view)), p = predictor(z); loss D(p_i, sg(z_j)) over view pairs.

    The default projector is the paper's 3-layer MLP with BatchNorm on every layer, its
    output included (`ProjectionHead((2048, 2048), 2048, output_batch_norm=True,
    normalize=False)`); pass a smaller one as `head`. The predictor is a bottleneck
    MLP `ProjectionHead((predictor_dim,), dim(z), normalize=False)` (predictor_dim
    defaults to dim(z) / 4, the paper's 512 for 2048). `y_pred["prediction"]` holds p;
    the metric `collapse_std` is the paper's collapse indicator, the std of z / |z|
    over the batch (about 1/sqrt(dim) when healthy, 0 when collapsed). Labels are unused.
    """

    min_views = 2
    default_loss = SimSiamLoss

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 predictor=None, predictor_dim=None, **kwargs):
        if head is None:
            head = ProjectionHead((2048, 2048), 2048, output_batch_norm=True, normalize=False)
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        if predictor_dim is not None:
            check_positive("predictor_dim", predictor_dim)
        self.predictor_dim = None if predictor_dim is None else int(predictor_dim)
        if isinstance(predictor, dict):
            predictor = keras.saving.deserialize_keras_object(predictor)
        self.predictor = predictor
        self.collapse = keras.metrics.Mean(name="collapse_std")

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(self.head.compute_output_shape((None, None))[-1])  # dim(z)
        if self.predictor is None:
            # Its BatchNorm is synchronized across replicas when the projector's is (one
            # global batch's statistics, as on one device).
            self.predictor = ProjectionHead((self.predictor_dim or max(1, dim // 4),), dim,
                                            sync_batch_norm=getattr(self.head,
                                                                    "sync_batch_norm", False),
                                            normalize=False, name="predictor")
        if not self.predictor.built:
            self.predictor.build((None, dim))

    def call(self, inputs, training=False):
        return with_prediction(super().call(inputs, training=training), self.predictor, training)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        self.collapse.update_state(collapse_std(y_pred["projection"]))
        return self.method_loss(y, dict(prediction=y_pred["prediction"],
                                        target=y_pred["projection"]), sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(predictor=keras.saving.serialize_keras_object(self.predictor),
                      predictor_dim=self.predictor_dim)
        return config
