"""DINO's loss (Caron et al., ICCV 2021): self-distillation with a centred, sharpened teacher.

For every teacher view i (the global crops) and every student view v != i (all
crops), the cross-entropy H(P_t(x_i), P_s(x_v)) with
P_t = softmax((g_t(x_i) - c) / teacher_temperature), no gradient, and
P_s = softmax(g_s(x_v) / student_temperature); a sample's loss is the mean over
those pairs (Algorithm 1 and the official `DINOLoss.forward`). The center c is the
EMA (momentum 0.9) of the mean teacher output over the GLOBAL batch
(`batch_center`: a cross-replica mean), updated after the loss has read it.

The teacher temperature follows the official schedule: linear from
`warmup_teacher_temperature` to `teacher_temperature`, then constant (official:
0.04 -> 0.07 over 30 epochs, a value per epoch; here per step, over
`warmup_teacher_temperature_steps`).
"""

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.inputs import check_finite, check_rank
from supcon_tf.registry import register
from supcon_tf.validation import check_int, check_positive, check_probability


def check_temperatures(student_temperature, teacher_temperature, warmup_teacher_temperature):
    """0 < warmup <= teacher temperature < student temperature (the teacher sharpens)."""
    check_positive("student_temperature", student_temperature)
    check_positive("teacher_temperature", teacher_temperature)
    check_positive("warmup_teacher_temperature", warmup_teacher_temperature)
    if warmup_teacher_temperature > teacher_temperature:
        raise ValueError(
            "`warmup_teacher_temperature` must be at most `teacher_temperature` (the "
            "teacher temperature is warmed up, e.g. 0.04 -> 0.07); received "
            f"warmup_teacher_temperature={warmup_teacher_temperature!r}, "
            f"teacher_temperature={teacher_temperature!r}.")
    if teacher_temperature >= student_temperature:
        raise ValueError(
            "`teacher_temperature` must be below `student_temperature` (DINO sharpens the "
            "teacher; official 0.04-0.07 against 0.1); received "
            f"teacher_temperature={teacher_temperature!r}, "
            f"student_temperature={student_temperature!r}.")


def teacher_temperature_at(step, teacher_temperature=0.04, warmup_teacher_temperature=0.04,
                           warmup_steps=0):
    """The teacher temperature of (0-based) `step`: linear warmup, then constant."""
    progress = ops.minimum(ops.cast(step, "float32") / float(max(warmup_steps, 1)), 1.0)
    if not warmup_steps:
        progress = ops.ones_like(progress)
    return warmup_teacher_temperature + (teacher_temperature
                                         - warmup_teacher_temperature) * progress


def dino_loss(student_logits, teacher_logits, center, student_temperature=0.1,
              teacher_temperature=0.04):
    """Per-sample loss [batch] from student logits [batch, V, K] (all crops, global
    first), teacher logits [batch, G, K] (the G global crops, G < V) and the center [K].
    `teacher_temperature` may be a tensor (the schedule's value of the step)."""
    check_rank("student_logits", student_logits, 3, "[batch, num_views, out_dim]")
    check_rank("teacher_logits", teacher_logits, 3, "[batch, num_global_views, out_dim]")
    views, globals_ = student_logits.shape[1], teacher_logits.shape[1]
    if views is None or globals_ is None or views < 2 or not 1 <= globals_ <= views:
        raise ValueError(
            "`student_logits` must hold at least 2 views and `teacher_logits` between 1 and "
            f"as many (the global crops); received shapes {tuple(student_logits.shape)} and "
            f"{tuple(teacher_logits.shape)}.")
    check_finite("student_logits", student_logits)
    check_finite("teacher_logits", teacher_logits)
    log_p = ops.log_softmax(ops.cast(student_logits, "float32") / student_temperature, axis=-1)
    centred = ops.cast(teacher_logits, "float32") - ops.cast(center, "float32")
    q = ops.stop_gradient(ops.softmax(centred / teacher_temperature, axis=-1))
    cross = -ops.einsum("bik,bvk->biv", q, log_p)  # [batch, G, V]
    pairs = [(i, v) for i in range(globals_) for v in range(views) if v != i]
    mask = ops.convert_to_tensor([[float(v != i) for v in range(views)]
                                  for i in range(globals_)])
    return ops.sum(cross * mask, axis=(1, 2)) / len(pairs)


def batch_center(teacher_logits):
    """The mean teacher output [K] over every view of the GLOBAL batch (no gradient):
    each replica's mean, averaged across replicas (equal local batches)."""
    local = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    local = ops.mean(ops.reshape(local, (-1, local.shape[-1])), axis=0, keepdims=True)
    means, _ = distribute.cross_replica_concat(local)
    return ops.mean(means, axis=0)


@register
class DINOLoss(keras.losses.Loss):
    """`loss(labels_or_None, y_pred)`: `dino_loss` as a serializable Keras loss.

    `y_pred` is a dict: `student` [b, V, K], `teacher` [b, G, K], `center` [K] and
    `step` (the training step, for the teacher temperature's warmup). Defaults are
    the official ones: student temperature 0.1, teacher 0.04 (0.07 after a warmup from
    0.04 in the paper's long runs), center momentum 0.9 (`DINO` updates its center
    with it, `next_center`).
    """

    def __init__(self, student_temperature=0.1, teacher_temperature=0.04,
                 warmup_teacher_temperature=0.04, warmup_teacher_temperature_steps=0,
                 center_momentum=0.9, reduction="sum_over_batch_size", name="dino_loss",
                 dtype=None):
        check_temperatures(student_temperature, teacher_temperature,
                           warmup_teacher_temperature)
        check_probability("center_momentum", center_momentum)
        super().__init__(name=name, reduction=reduction, dtype=dtype or "float32")
        self.student_temperature = float(student_temperature)
        self.teacher_temperature = float(teacher_temperature)
        self.warmup_teacher_temperature = float(warmup_teacher_temperature)
        self.warmup_teacher_temperature_steps = check_int(
            "warmup_teacher_temperature_steps", warmup_teacher_temperature_steps, minimum=0)
        self.center_momentum = float(center_momentum)

    def temperature_at(self, step):
        return teacher_temperature_at(step, self.teacher_temperature,
                                      self.warmup_teacher_temperature,
                                      self.warmup_teacher_temperature_steps)

    def next_center(self, center, teacher_logits):
        """The EMA of the center after a step whose teacher outputs are `teacher_logits`."""
        m = self.center_momentum
        return m * ops.cast(center, "float32") + (1.0 - m) * batch_center(teacher_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Labels are unused; Keras' Loss rejects y_true=None.
        batch = ops.shape(y_pred["student"])[0]
        return super().__call__(ops.zeros((batch, 0)), y_pred, sample_weight)

    def call(self, y_true, y_pred):
        del y_true
        return dino_loss(y_pred["student"], y_pred["teacher"], y_pred["center"],
                         self.student_temperature, self.temperature_at(y_pred["step"]))

    def get_config(self):
        config = super().get_config()
        config.update(student_temperature=self.student_temperature,
                      teacher_temperature=self.teacher_temperature,
                      warmup_teacher_temperature=self.warmup_teacher_temperature,
                      warmup_teacher_temperature_steps=self.warmup_teacher_temperature_steps,
                      center_momentum=self.center_momentum)
        return config
