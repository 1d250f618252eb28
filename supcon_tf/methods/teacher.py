"""The momentum teacher: an exponential moving average of online layers, as Keras state.

MoCo (He et al. 2020: key encoder), BYOL (Grill et al. 2020: target network) and
DINO-like methods keep a slowly moving copy of the online encoder and head. Here
that copy is a `Teacher` layer holding one non-trainable variable per variable of
the watched online layers (`watch(encoder, head)`); its forward pass runs the
online layer's own graph on the teacher's weights (`Layer.stateless_call`), so no
second model is built and the copy always has the online architecture.

When the EMA update happens. The papers update the teacher *after* the optimizer
step t: xi <- m_t xi + (1 - m_t) theta_{t+1}. Here `update()` is called at the
*start* of step t+1, in the forward pass, from the online weights it then sees
(theta_{t+1}, already updated by step t) and with momentum m_t (the schedule's value
of the previous step). That is the same sequence of teachers shifted by one call,
and it is backend-agnostic: Keras captures variable assignments made in `call` /
`compute_loss` in its stateless JAX step and in TensorFlow's step alike (the JAX
trainer returns the non-trainable values of `stateless_call` and
`stateless_compute_loss`), while an assignment after the optimizer step would need
a backend-specific train step. The only difference to the papers: after the last
step the teacher lacks the final update (it is never used again). At the first
step (`step == 0`) the update copies the online weights (m = 0), the papers'
initialization xi_0 = theta_0, so the copy follows whatever weights (pretrained,
restored) the online layers hold when training starts.

Momentum: a constant `momentum` (MoCo: 0.999), or `schedule="cosine"`, raised from
`momentum` to 1 over `total_steps` as in BYOL: m_k = 1 - (1 - m) (cos(pi k / K) + 1) / 2.
Only the online *trainable* variables are averaged; the teacher's non-trainable
ones (BatchNorm moving statistics) are its own, updated by its forward pass in
training mode, as the buffers of MoCo's key encoder are.
"""

import math

import keras
from keras import ops

from supcon_tf.registry import register
from supcon_tf.validation import check_choice, check_positive, check_probability

SCHEDULES = ("constant", "cosine")


def momentum_at(step, momentum, schedule="constant", total_steps=None):
    """The momentum of (0-based) step `step`: constant, or cosine from `momentum` to 1."""
    if schedule == "constant":
        return ops.cast(momentum, "float32") + 0.0 * ops.cast(step, "float32")
    progress = ops.minimum(ops.cast(step, "float32") / float(total_steps), 1.0)
    return 1.0 - (1.0 - momentum) * (ops.cos(math.pi * progress) + 1.0) / 2.0


@register
class Teacher(keras.layers.Layer):
    """EMA copies of the variables of online layers, and their forward pass.

        teacher = Teacher(momentum=0.996, schedule="cosine", total_steps=10_000)
        teacher.watch(encoder, head)      # once the online layers are built
        teacher.update()                  # at the start of each train step
        keys = teacher(head, teacher(encoder, images, training=True), training=True)

    The online layers are referenced, not tracked: the teacher owns only its copies
    (and `step`, the number of updates so far), so a model that tracks both saves
    each variable once.
    """

    def __init__(self, momentum=0.999, schedule="constant", total_steps=None, **kwargs):
        super().__init__(**kwargs)
        check_probability("momentum", momentum)
        check_choice("schedule", schedule, SCHEDULES)
        if total_steps is not None:  # None with "cosine": set before training (`fit` does).
            check_positive("total_steps", total_steps)
        self.momentum = float(momentum)
        self.schedule = schedule
        self.total_steps = None if total_steps is None else int(total_steps)
        # Plain attributes, not tracked: the online layers are not the teacher's.
        object.__setattr__(self, "_online", ())
        object.__setattr__(self, "copies", [])

    def watch(self, *layers):
        """Creates the copies of the (built) online `layers`' variables."""
        if self._online:
            raise ValueError("`watch` was already called on this Teacher.")
        object.__setattr__(self, "_online", tuple(layers))
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                    trainable=False, name="step",
                                    aggregation="only_first_replica")
        for i, layer in enumerate(layers):
            if not layer.built:
                raise ValueError(f"`layers[{i}]` ({layer.name}) must be built before "
                                 "the teacher watches it.")
            copies = []
            for j, v in enumerate(layer.trainable_variables + layer.non_trainable_variables):
                aggregation = "only_first_replica" if v.trainable else v.aggregation
                copies.append(self.add_weight(
                    shape=v.shape, dtype=v.dtype, initializer="zeros", trainable=False,
                    name=f"{layer.name}_{j}_{v.name}", aggregation=aggregation))
                # A copy, not the same buffer (JAX donates both to the step).
                copies[-1].assign(ops.copy(v.value))  # Usable (evaluated) before training.
            self.copies.append(copies)
        self.built = True

    def current_momentum(self):
        """The momentum the next `update()` uses: 0 at step 0, else m of the previous step."""
        if self.schedule == "cosine" and self.total_steps is None:
            raise ValueError(
                "`total_steps` must be set (> 0) for schedule='cosine' before training; "
                "received total_steps=None. Pass total_steps= to the model, or train with "
                "`fit`, which sets it to epochs x steps per epoch.")
        step = self.step.value
        m = momentum_at(ops.maximum(step - 1, 0), self.momentum, self.schedule,
                        self.total_steps)
        return ops.where(ops.equal(step, 0), 0.0, m)

    def update(self):
        """One EMA step from the online weights as they are now; returns the momentum."""
        m = self.current_momentum()
        first = ops.equal(self.step.value, 0)
        for layer, copies in zip(self._online, self.copies):
            online = layer.trainable_variables + layer.non_trainable_variables
            for v, c in zip(online, copies):
                value = ops.stop_gradient(ops.convert_to_tensor(v.value))
                if v.trainable:
                    mc = ops.cast(m, c.dtype)
                    c.assign(mc * c.value + (1.0 - mc) * ops.cast(value, c.dtype))
                else:  # Own statistics; copied once at the start.
                    c.assign(ops.where(first, ops.cast(value, c.dtype), c.value))
        self.step.assign(self.step.value + 1)
        return m

    def copies_of(self, layer):
        for online, copies in zip(self._online, self.copies):
            if online is layer:
                return copies
        raise ValueError(f"`layer` {layer.name!r} is not watched by this teacher; "
                         f"watched: {[l.name for l in self._online]}.")

    def call(self, layer, inputs, training=False):
        """`layer(inputs)` computed with the teacher's weights, without gradient."""
        copies = self.copies_of(layer)
        n = len(layer.trainable_variables)
        trainable = [ops.stop_gradient(c.value) for c in copies[:n]]
        non_trainable = [c.value for c in copies[n:]]
        outputs, non_trainable = layer.stateless_call(trainable, non_trainable, inputs,
                                                      training=training)
        for c, value in zip(copies[n:], non_trainable):
            c.assign(value)
        return ops.stop_gradient(outputs)

    def __call__(self, layer, inputs, training=False):
        # Not through Layer.__call__: `layer` is an argument, not an input tensor.
        return self.call(layer, inputs, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, schedule=self.schedule,
                      total_steps=self.total_steps)
        return config
