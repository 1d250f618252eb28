"""InstDisc (Wu, Xiong, Yu and Lin, "Unsupervised Feature Learning via Non-Parametric
Instance Discrimination", CVPR 2018): every training image is its own class.

Per step: f = the L2-normalized 128-d head output of each view; its own memory-bank row
v_i (the positive) and m = 4,096 rows drawn uniformly (the noise) score it in the NCE
estimate of the non-parametric softmax at temperature 0.07, with the proximal term
lambda ||f_i - v_i||^2 (lambda = 30) (`supcon_tf.losses.instdisc`); then the bank rows of
the global batch move to normalize(0.5 v_i + 0.5 f_i) (`MemoryBank`). Batches carry
each sample's index in the training set: `(views, {"index": [b], "labels": [b]})`
(the labels are optional, read by an online probe only); the command line's pipeline
adds the index to the methods whose class sets `sample_index` (the position of the
sample in the training split, the same in every epoch, shuffle and resumed run).

The normalizer Z, `normalizer=`:
* "first_batch" (default, the released code, zhirongw/lemniscate.pytorch
  `NCEAverage`): Z = n x the mean of exp(v.f / T) over the first training batch's
  positive and noise scores (the global batch under `tf.distribute`), then fixed; it is
  a bank variable, so a resumed run keeps it.
* "per_sample": the paper's Monte Carlo formula, Z_i = (n / m) sum_k exp(v_jk.f_i / T),
  from each sample's own noise rows at every step.
Both treat Z as a constant (no gradient). The released code has no proximal term (the
paper's Sec. 3.4 adds it); `InstDiscLoss(proximal=0.0)` trains as the released code.

Evaluation: `bank_knn_top1` classifies held-out images by weighted kNN against the bank
(k = 200 nearest rows, weights exp(cos / 0.07)), the paper's Sec. 3.5 classifier.
With several views per sample each view is a query; the bank moves towards their mean.
"""

import keras
import numpy as np
from keras import ops

from supcon_tf import distribute
from supcon_tf.losses.instdisc import InstDiscLoss, normalizer_estimate
from supcon_tf.methods.base import ContrastiveModel, unpack_batch
from supcon_tf.methods.memory_bank import MemoryBank, check_index
from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_int, check_probability

NORMALIZERS = ("first_batch", "per_sample")


def split_targets(y):
    """(labels or None, index or None) of a batch's `y`: {"index", "labels"} or labels."""
    if isinstance(y, dict):
        return y.get("labels"), y.get("index")
    return y, None


class _Projector(keras.Model):
    """Images -> the L2-normalized head output (the features the bank holds)."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.inner = model

    def call(self, images, training=False):
        features = self.inner.head(self.inner.encoder(images, training=False),
                                   training=False)
        return ops.normalize(ops.cast(features, "float32"), axis=-1)


@register
class InstDisc(ContrastiveModel):
    """Instance discrimination with a memory bank; see the module docstring.

    Args (besides `ContrastiveModel`'s): `bank_size` (n: the number of training
    samples, one row each), `num_noise` (m: 4,096), `bank_momentum` (0.5),
    `normalizer` ("first_batch" or "per_sample"), `seed` (the bank's initial rows and
    noise draws). The head must L2-normalize (the default `ProjectionHead` does); the
    paper's is one linear layer to 128 dims (`hidden_dims=()`).
    """

    min_views = 1
    default_loss = InstDiscLoss
    sample_index = True  # The command line's pipeline adds each sample's index.
    step_state = "the memory bank"

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 bank_size=None, num_noise=4096, bank_momentum=0.5, normalizer="first_batch",
                 seed=0, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        if bank_size is None:
            raise ValueError("`bank_size` must be the number of training samples (one bank "
                             "row each); received bank_size=None.")
        self.bank_size = check_int("bank_size", bank_size, minimum=1)
        self.num_noise = check_int("num_noise", num_noise, minimum=1)
        self.bank_momentum = float(check_probability("bank_momentum", bank_momentum))
        self.normalizer = check_choice("normalizer", normalizer, NORMALIZERS)
        self.seed = check_int("seed", seed, minimum=0)
        self.bank = None

    @property
    def temperature(self):
        return getattr(self.method_loss, "temperature", 0.07)

    def build(self, input_shape):
        super().build(input_shape)
        if self.bank is None:
            dim = int(self.head.compute_output_shape((None, None))[-1])
            self.bank = MemoryBank(self.bank_size, dim, self.bank_momentum, self.seed,
                                   name="bank")

    def _check_batch(self, data, training):
        super()._check_batch(data, training)
        _, y, _ = unpack_batch(data)
        _, index = split_targets(y)
        if index is None:
            raise ValueError(
                "InstDisc needs each sample's index in the training set (its memory-bank "
                "row): batches must be `(views, {'index': [batch] ints, 'labels': [batch] "
                "class ids (optional)})`; received y without an 'index'.")

    def fit(self, x=None, y=None, *args, **kwargs):
        _, index = split_targets(y)
        if index is not None and not hasattr(index, "element_spec"):
            check_index(np.asarray(index), self.bank_size, "y['index']")
        return super().fit(x, y, *args, **kwargs)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        inputs = dict(positives=y_pred["positives"], noise=y_pred["noise"],
                      bank_size=self.bank_size)
        if self.normalizer == "first_batch":
            inputs["normalizer"] = y_pred["normalizer"]
        features = y_pred["projection"]
        losses = [self.method_loss(y, dict(inputs, features=features[:, v]), sample_weight)
                  for v in range(features.shape[1])]
        loss = losses[0] if len(losses) == 1 else ops.mean(ops.stack(losses))
        return ops.where(self.bank.valid(y_pred["index"]), loss,
                         ops.cast(float("nan"), loss.dtype))

    def _first_batch_normalizer(self, y_pred):
        """Z: the stored one, or the estimate of this (global) batch when none is stored."""
        estimate = normalizer_estimate(y_pred["projection"][:, 0], y_pred["positives"],
                                       y_pred["noise"], self.bank_size, self.temperature)
        estimate = ops.mean(distribute.cross_replica_concat(estimate)[0])
        stored = self.bank.normalizer.value
        return ops.where(stored > 0, stored, estimate)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labels, index = split_targets(y)
        index = ops.cast(index, "int32")
        # The bank as it is before this step: the positives and the noise rows.
        y_pred = dict(y_pred, index=index, positives=self.bank.rows(index),
                      noise=self.bank.rows(self.bank.draw(index, self.num_noise)))
        if self.normalizer == "first_batch":
            y_pred["normalizer"] = self._first_batch_normalizer(y_pred)
        loss = super().compute_loss(x, labels, y_pred, sample_weight, training=training)
        if training:  # After the loss has read the bank.
            if self.normalizer == "first_batch":
                self.bank.normalizer.assign(y_pred["normalizer"])
            self.bank.update(ops.mean(y_pred["projection"], axis=1), index)
        return loss

    def bank_knn_top1(self, heldout, bank_labels, k=200, temperature=None, batch_size=256):
        """Weighted-kNN top-1 of held-out `(images, labels)` (arrays or a dataset of
        batches) against the bank rows, labelled by `bank_labels` [bank_size] (the
        training labels in index order); `temperature` defaults to the loss's (0.07)."""
        from supcon_tf.evaluation import LabelledPredictor, knn_accuracy

        bank_labels = np.asarray(bank_labels)
        if len(bank_labels) != self.bank_size:
            raise ValueError(f"`bank_labels` must hold one label per bank row "
                             f"(bank_size={self.bank_size}); received {len(bank_labels)}.")
        queries, labels = LabelledPredictor(_Projector(self, name="projector"))(heldout, batch_size)
        return knn_accuracy(queries, labels, ops.convert_to_numpy(self.bank.values),
                            bank_labels, k=k, temperature=temperature or self.temperature)

    def evaluation_metrics(self, reference, heldout):
        """Metrics of the method's own state for the run's report: the bank's kNN top-1
        (`reference`: the training split in index order, for the rows' labels)."""
        from supcon_tf.evaluation.embed import is_dataset

        if is_dataset(reference):
            labels = np.concatenate([y for _, y, *_ in reference.as_numpy_iterator()])
        else:
            labels = np.asarray(reference[1])
        return {"bank_knn_top1": self.bank_knn_top1(heldout, labels,
                                                    k=min(200, self.bank_size))}

    def get_config(self):
        config = super().get_config()
        config.update(bank_size=self.bank_size, num_noise=self.num_noise,
                      bank_momentum=self.bank_momentum, normalizer=self.normalizer,
                      seed=self.seed)
        return config
