"""Keras `Loss` classes over `contrastive_loss`: y_true = labels, y_pred = features."""

import keras

from supcon_tf.inputs import check_label_dtype
from supcon_tf.losses.contrastive import contrastive_loss, validate_options
from supcon_tf.registry import register


@register
class SupConLoss(keras.losses.Loss):
    """Supervised contrastive loss (Khosla et al. 2020) as a serializable Keras loss.

    `loss(labels, features)` with features [batch, num_views, dim]; labels may be
    None. Defaults follow the official SupCon runs (scaled by temperature).
    """

    def __init__(self, temperature=0.07, contrast_mode="all", summation_location="outside",
                 denominator_mode="all", positives_cap=-1, scale_by_temperature=True,
                 use_labels=True, reduction="sum_over_batch_size", name="supcon_loss",
                 dtype=None):
        validate_options(temperature, contrast_mode, summation_location, denominator_mode,
                         positives_cap)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.temperature = float(temperature)
        self.contrast_mode = contrast_mode
        self.summation_location = summation_location
        self.denominator_mode = denominator_mode
        self.positives_cap = positives_cap
        self.scale_by_temperature = bool(scale_by_temperature)
        self.use_labels = bool(use_labels)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras' Loss rejects y_true=None; a [batch, 0] tensor stands for "no labels".
        # Keras' Loss casts y_true to the loss dtype: class ids are checked before.
        if y_true is None or not self.use_labels:
            y_true = keras.ops.zeros((keras.ops.shape(y_pred)[0], 0), "float32")
        else:
            y_true = keras.ops.convert_to_tensor(y_true)
            check_label_dtype(y_true.dtype, len(y_true.shape))
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true, y_pred):
        no_labels = len(y_true.shape) == 2 and y_true.shape[1] == 0
        if len(y_true.shape) == 1:  # Class ids, integral (checked in __call__).
            y_true = keras.ops.cast(y_true, "int32")
        return contrastive_loss(
            y_pred,
            None if no_labels else y_true,
            temperature=self.temperature,
            contrast_mode=self.contrast_mode,
            summation_location=self.summation_location,
            denominator_mode=self.denominator_mode,
            positives_cap=self.positives_cap,
            scale_by_temperature=self.scale_by_temperature,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            temperature=self.temperature,
            contrast_mode=self.contrast_mode,
            summation_location=self.summation_location,
            denominator_mode=self.denominator_mode,
            positives_cap=self.positives_cap,
            scale_by_temperature=self.scale_by_temperature,
            use_labels=self.use_labels,
        )
        return config


@register
class SimCLRLoss(SupConLoss):
    """SimCLR's NT-Xent (Chen et al. 2020): labels are ignored, only views pair up.

    Not scaled by temperature, as in the official SimCLR runs.
    """

    def __init__(self, temperature=0.1, contrast_mode="all", summation_location="outside",
                 denominator_mode="all", positives_cap=-1, scale_by_temperature=False,
                 reduction="sum_over_batch_size", name="simclr_loss", dtype=None,
                 use_labels=False):
        if use_labels:
            raise ValueError("`use_labels` must be False for SimCLRLoss; use SupConLoss.")
        super().__init__(temperature=temperature, contrast_mode=contrast_mode,
                         summation_location=summation_location,
                         denominator_mode=denominator_mode, positives_cap=positives_cap,
                         scale_by_temperature=scale_by_temperature, use_labels=False,
                         reduction=reduction, name=name, dtype=dtype)
