"""DINO (Caron et al., ICCV 2021): self-distillation with no labels.

Student: encoder -> head (a 3-layer MLP, hidden 2048, GELU, no BatchNorm, to a
256-d bottleneck, L2-normalized) -> a weight-normalized last layer of `out_dim`
prototypes (`WeightNormLinear`, its norm fixed by default), on every crop. Teacher:
the EMA of all three (`Teacher`; momentum 0.996 raised to 1 by a cosine over
training), on the global crops only: with multi-crop batches ([b, 2, H, W, C],
[b, V, h, w, C]) the first view group; with one views tensor, every view. The loss
(`supcon_tf.losses.dino`) is the cross-entropy between the centred, sharpened
teacher output of each global crop and the student output of every other crop; the
center (EMA 0.9 of the GLOBAL batch's mean teacher output) and the teacher are model
variables: checkpointed, resumed and saved in `.keras` files. Labels are unused.

Where the official code (facebookresearch/dino, `main_dino.py`) and the paper differ
or need a choice, this follows the code, step-based instead of epoch-based:
* the last layer gets no gradient for the first `freeze_last_layer_steps` steps
  (official: `freeze_last_layer=1` epoch, by dropping its gradients; here the
  gradient is multiplied by 0, so Adam's moments see zeros and weight decay still
  applies to the direction v, which leaves the normalized layer unchanged);
* `weight_decay_end` raises the optimizer's weight decay from its own value to that
  one by a cosine over training (official 0.04 -> 0.4;
  `supcon_tf.optimizers.set_weight_decay_schedule`), and excludes biases and
  LayerNorm / BatchNorm parameters from it, as the official parameter groups do;
* gradient clipping is the optimizer's per-variable `clipnorm` (official
  `clip_grad=3.0` clips each parameter's gradient norm);
* the teacher is updated at the start of the next step (see
  `supcon_tf.methods.teacher`), the center after the loss has read it (official).
With Keras' `gradient_accumulation_steps` the teacher and the center would advance
once per micro-batch instead of once per optimizer step, so the combination is
refused.
"""

import keras
from keras import ops

from supcon_tf.heads import ProjectionHead, WeightNormLinear
from supcon_tf.losses.dino import DINOLoss
from supcon_tf.methods.base import ContrastiveModel, view_groups
from supcon_tf.methods.momentum import ScheduleFromFit
from supcon_tf.methods.teacher import Teacher
from supcon_tf.optimizers.weight_decay import CosineRamp, set_weight_decay_schedule
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive

# Parameters the official recipe leaves out of weight decay (biases, norm layers).
NO_DECAY = ("bias", "gamma", "beta")


@register
class DINO(ContrastiveModel):
    """DINO; see the module docstring.

    Args (besides `ContrastiveModel`'s):
      out_dim: prototypes of the last layer (paper: 65,536).
      norm_last_layer: keep the last layer's column norms at 1 (official default).
      momentum, momentum_schedule, total_steps: the teacher's EMA (`Teacher`); left
        None, `fit` sets `total_steps` to its epochs x steps per epoch (the command
        line passes the pretraining steps).
      freeze_last_layer_steps: training steps without gradient to the last layer
        (paper: one epoch).
      weight_decay_end: None for a constant weight decay, else its final value under
        a cosine from the optimizer's `weight_decay` (paper: 0.04 -> 0.4).
    """

    min_views = 2
    default_loss = DINOLoss

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 out_dim=65536, norm_last_layer=True, momentum=0.996,
                 momentum_schedule="cosine", total_steps=None, freeze_last_layer_steps=0,
                 weight_decay_end=None, **kwargs):
        if head is None:
            head = ProjectionHead((2048, 2048), 256, use_batch_norm=False, activation="gelu")
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        self.last_layer = WeightNormLinear(out_dim, norm_last_layer, name="last_layer")
        self.teacher = Teacher(momentum, momentum_schedule, total_steps, name="teacher")
        self.freeze_last_layer_steps = check_int("freeze_last_layer_steps",
                                                 freeze_last_layer_steps, minimum=0)
        if weight_decay_end is not None:
            check_positive("weight_decay_end", weight_decay_end, allow_zero=True)
        self.weight_decay_end = None if weight_decay_end is None else float(weight_decay_end)
        self.weight_decay_schedule = None
        self.center = self.add_weight(shape=(self.last_layer.out_dim,), initializer="zeros",
                                      dtype="float32", trainable=False, name="center",
                                      aggregation="only_first_replica")

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(self.head.compute_output_shape((None, None))[-1])
        if not self.last_layer.built:
            self.last_layer.build((None, dim))
        if not self.teacher.built:
            self.teacher.watch(self.encoder, self.head, self.last_layer)

    step_state = "the teacher (EMA) and the center"

    def compile(self, optimizer="sgd", loss="auto", **kwargs):
        """`ContrastiveModel.compile` (which refuses gradient accumulation); sets the
        weight-decay schedule (with `weight_decay_end`)."""
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        if self.weight_decay_end is not None:
            if self.weight_decay_schedule is None:
                self.weight_decay_schedule = CosineRamp(inner.weight_decay or 0.0,
                                                        self.weight_decay_end,
                                                        self.teacher.total_steps)
            set_weight_decay_schedule(inner, self.weight_decay_schedule)
            if not inner.built:
                inner.exclude_from_weight_decay(var_names=list(NO_DECAY))

    def fit(self, *args, callbacks=None, **kwargs):
        open_ = [s for s in (self.weight_decay_schedule,) if s is not None
                 and s.total_steps is None]
        if self.teacher.total_steps is None and (open_ or self.teacher.schedule == "cosine"):
            callbacks = [ScheduleFromFit(self.teacher, *open_), *(callbacks or [])]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def call(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)) and len(inputs.shape) == 4:
            if not (training and self.augmenter is not None):
                return self.encoder(inputs, training=training)
            inputs = self.augmenter(inputs, training=True)
        groups = view_groups(inputs, 1, "inputs")
        outputs = super().call(tuple(groups), training=training)
        projection = outputs["projection"]
        gate = 1.0
        if training:  # Teacher steps so far = this step's index.
            frozen = self.teacher.step.value < self.freeze_last_layer_steps
            gate = 1.0 - ops.cast(frozen, "float32")
            self.teacher.update()
        flat = ops.reshape(projection, (-1, projection.shape[-1]))
        logits = self.last_layer(flat, gate=gate)
        outputs["logits"] = ops.reshape(logits, (-1, projection.shape[1], logits.shape[-1]))
        # The teacher: the global crops only (the first view group).
        global_views = groups[0]
        num_global, *image_shape = global_views.shape[1:]
        t = self.teacher(self.encoder, ops.reshape(global_views, (-1, *image_shape)),
                         training=training)
        t = self.teacher(self.last_layer, self.teacher(self.head, t, training=training))
        outputs["teacher_logits"] = ops.reshape(t, (-1, num_global, t.shape[-1]))
        return outputs

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        step = ops.maximum(self.teacher.step.value - 1, 0)  # This step's index.
        inputs = dict(student=y_pred["logits"], teacher=y_pred["teacher_logits"],
                      center=self.center.value, step=step)
        return self.method_loss(y, inputs, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if training:  # After the loss has read the center.
            self.center.assign(self.method_loss.next_center(self.center.value,
                                                            y_pred["teacher_logits"]))
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(out_dim=self.last_layer.out_dim,
                      norm_last_layer=self.last_layer.norm_last_layer,
                      momentum=self.teacher.momentum, momentum_schedule=self.teacher.schedule,
                      total_steps=self.teacher.total_steps,
                      freeze_last_layer_steps=self.freeze_last_layer_steps,
                      weight_decay_end=self.weight_decay_end)
        return config
