"""What the momentum-teacher methods (MoCo, supervised MoCo, BYOL) share.

An online encoder + head (+ an optional predictor MLP, a `ProjectionHead` with
`normalize=False`) and a `Teacher` holding the EMA of the encoder and head. A
training-mode forward pass is the start of a train step: it updates the teacher
(see `supcon_tf.methods.teacher` for why then) and encodes the views the method
needs with it, so `y_pred` also holds the `target` projections [batch, k, p].
Evaluation (`training=False`) encodes them too, with the teacher unchanged.
"""

import keras
from keras import ops

from supcon_tf.heads import ProjectionHead
from supcon_tf.methods.base import ContrastiveModel
from supcon_tf.methods.teacher import Teacher


class MomentumModel(ContrastiveModel):
    """Base of the momentum-teacher methods; see the module docstring.

    Args (besides `ContrastiveModel`'s):
      momentum: the teacher's EMA momentum, in [0, 1].
      momentum_schedule: "constant" or "cosine" (from `momentum` to 1 over
        `total_steps`). Left None, the first `fit` sets `total_steps` to its epochs x
        steps per epoch (the command line passes the pretraining steps).
      predictor_hidden_dims: None for no predictor, else the hidden widths of the
        predictor MLP (its output is as wide as the projection).
      predictor_batch_norm: BatchNorm after the predictor's hidden layers (BYOL: yes);
        synchronized across replicas when the head's is.
    """

    step_state = "the teacher (EMA)"

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None,
                 momentum=0.999, momentum_schedule="constant", total_steps=None,
                 predictor_hidden_dims=None, predictor_batch_norm=True, **kwargs):
        super().__init__(encoder, head=head, loss=loss, augmenter=augmenter, probe=probe,
                         **kwargs)
        self.teacher = Teacher(momentum, momentum_schedule, total_steps, name="teacher")
        self.predictor_hidden_dims = (None if predictor_hidden_dims is None
                                      else [int(d) for d in predictor_hidden_dims])
        self.predictor_batch_norm = bool(predictor_batch_norm)
        self.predictor = None

    def fit(self, *args, callbacks=None, **kwargs):
        if self.teacher.schedule == "cosine" and self.teacher.total_steps is None:
            callbacks = [ScheduleFromFit(self.teacher), *(callbacks or [])]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def target_views(self, num_views):
        """Indices of the views the teacher encodes (all by default)."""
        return tuple(range(num_views))

    def build(self, input_shape):
        super().build(input_shape)
        image_shape = (None, *tuple(input_shape)[-3:])
        if len(tuple(input_shape)) == 4 and self.augmenter is not None:
            image_shape = (None, *tuple(self.augmenter.compute_output_shape(input_shape))[-3:])
        representation = tuple(self.encoder.compute_output_shape(image_shape))
        projection = tuple(self.head.compute_output_shape(representation))
        if self.predictor_hidden_dims is not None and self.predictor is None:
            self.predictor = ProjectionHead(self.predictor_hidden_dims, projection[-1],
                                            use_batch_norm=self.predictor_batch_norm,
                                            sync_batch_norm=getattr(self.head,
                                                                    "sync_batch_norm", False),
                                            normalize=False, name="predictor")
            self.predictor.build(projection)
        self.build_method_state(projection[-1])
        if not self.teacher.built:
            self.teacher.watch(self.encoder, self.head)

    def build_method_state(self, projection_dim):
        """Hook for a method's own state (MoCo's queue)."""

    def encode_target(self, images, training):
        """Teacher representation of images [n, H, W, C] (MoCo shuffles BN here)."""
        return self.teacher(self.encoder, images, training=training)

    def call(self, inputs, training=False):
        if len(inputs.shape) == 4:
            if not (training and self.augmenter is not None):
                return self.encoder(inputs, training=training)
            inputs = self.augmenter(inputs, training=True)
        outputs = super().call(inputs, training=training)
        projection = outputs["projection"]
        num_views, dim = projection.shape[1], projection.shape[2]
        if self.predictor is not None:
            flat = ops.reshape(projection, (-1, dim))
            prediction = self.predictor(flat, training=training)
            outputs["prediction"] = ops.reshape(prediction, (-1, num_views, dim))
        if training:
            self.teacher.update()
        picked = self.target_views(num_views)
        views = ops.stack([inputs[:, v] for v in picked], axis=1)
        images = ops.reshape(views, (-1, *inputs.shape[2:]))
        target = self.teacher(self.head, self.encode_target(images, training), training=training)
        outputs["target"] = ops.reshape(target, (-1, len(picked), target.shape[-1]))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.teacher.momentum,
                      momentum_schedule=self.teacher.schedule,
                      total_steps=self.teacher.total_steps,
                      predictor_hidden_dims=self.predictor_hidden_dims,
                      predictor_batch_norm=self.predictor_batch_norm)
        return config


class ScheduleFromFit(keras.callbacks.Callback):
    """Sets the `total_steps` of the teacher (and of any other `schedules`, e.g. DINO's
    weight decay) to `fit`'s epochs x steps per epoch, before the first step is traced
    (a schedule the constructor left open)."""

    def __init__(self, teacher, *schedules):
        super().__init__()
        self.teacher = teacher
        self.schedules = schedules

    def on_train_begin(self, logs=None):
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        if not steps:
            raise ValueError(
                "The cosine momentum schedule needs `total_steps`, and `fit` cannot tell the "
                "steps per epoch of this data (a dataset of unknown length); pass "
                "total_steps= to the model or steps_per_epoch= to `fit`.")
        for schedule in (self.teacher, *self.schedules):
            schedule.total_steps = int(epochs) * int(steps)
