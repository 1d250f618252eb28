"""What every contrastive method shares: views -> encoder -> head, and its step.

A method is a `keras.Model` subclass that names its default loss and minimum
number of views, and, if it needs to, overrides `method_loss`. The train step
itself is Keras' own for each backend (a `GradientTape` on TensorFlow, a
stateless jit-compiled step on JAX): both call `compute_loss`, the one
definition of the loss computation, so no method has to write it twice.
"""

import copy

import keras
from keras import ops

from supcon_tf import distribute
from supcon_tf.heads.probe import as_probe
from supcon_tf.methods.guards import GuardedFit, nan_unless_finite
from supcon_tf.heads import ProjectionHead


def unpack_batch(data):
    """(x, y, sample_weight) from a batch, as Keras' `fit` passes it."""
    if isinstance(data, (list, tuple)):
        data = tuple(data) + (None,) * (3 - len(data))
        return data[0], data[1], data[2]
    return data, None, None


def views_shape(views, min_views, where="views"):
    """Checks a views tensor [batch, num_views, H, W, C]; returns (num_views, H, W, C)."""
    shape = tuple(views.shape)
    if len(shape) != 5:
        raise ValueError(
            f"`{where}` must have rank 5, shape [batch, num_views, height, width, channels]; "
            f"received shape {shape}."
        )
    if shape[1] is None or shape[1] < min_views:
        raise ValueError(
            f"`{where}` must hold at least {min_views} view(s) along axis 1 for this "
            f"method; received shape {shape}."
        )
    return shape[1:]


def view_groups(views, min_views=1, where="views"):
    """The view groups of a batch, checked: `[views]` for one tensor [b, V, H, W, C], or
    the groups of a tuple (one per resolution, e.g. multi-crop's ([b, 2, H, W, C],
    [b, 6, h, w, C])), which must agree on the batch size and hold `min_views` in all."""
    if not isinstance(views, (list, tuple)):
        views_shape(views, min_views, where)
        return [views]
    if not views:
        raise ValueError(f"`{where}` must hold at least one view group; received an empty "
                         f"{type(views).__name__}.")
    shapes = [tuple(views_shape(g, 1, f"{where}[{i}]")) for i, g in enumerate(views)]
    batches = [tuple(g.shape)[0] for g in views]
    if len({b for b in batches if b is not None}) > 1:
        raise ValueError(
            f"The view groups of `{where}` must have the same batch size (axis 0); received "
            f"shapes {[tuple(g.shape) for g in views]}.")
    if sum(s[0] for s in shapes) < min_views:
        raise ValueError(
            f"`{where}` must hold at least {min_views} view(s) in all its groups for this "
            f"method; received shapes {[tuple(g.shape) for g in views]}.")
    return list(views)


def per_view(layer, features, training=False):
    """`layer` on every view of `features` [batch, views, d]: [batch, views, d'] (e.g. a
    predictor on the projections)."""
    out = layer(ops.reshape(features, (-1, features.shape[-1])), training=training)
    return ops.reshape(out, (-1, features.shape[1], out.shape[-1]))


def with_prediction(outputs, predictor, training=False):
    """`outputs` with "prediction": `predictor` on each view's projection (SimSiam, NNCLR);
    the representation of plain images passes through unchanged."""
    if isinstance(outputs, dict):
        outputs["prediction"] = per_view(predictor, outputs["projection"], training)
    return outputs


def refuse_gradient_accumulation(model):
    """Raises ValueError when `model.optimizer` accumulates gradients over micro-batches
    and the model has `step_state`: it would advance once per micro-batch, not once per
    optimizer step as on one large batch."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # Loss scaling.
    steps = getattr(optimizer, "gradient_accumulation_steps", None)
    if model.step_state and steps and steps > 1:
        raise ValueError(
            f"{type(model).__name__} cannot train with the optimizer's "
            f"`gradient_accumulation_steps` (received {steps}): {model.step_state} would "
            "advance once per micro-batch instead of once per optimizer step. Compile with "
            "gradient_accumulation_steps=None and a larger batch.")


def restore_compile(model, config):
    """`Model.compile_from_config` for models whose `compile` has defaults of its own.

    Keras skips (with a warning) restoring the compile state of a model that overrides
    `compile`; ours keep Keras' signature, so the saved state is restored as is.
    """
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.optimizer is not None and model.built:
        model.optimizer.build(model.trainable_variables)


class ContrastiveModel(GuardedFit, keras.Model):
    """Base of the contrastive methods: encodes all views in one call.

    `model(views)` with views [batch, num_views, H, W, C] returns a dict with the
    `representation` [batch, num_views, r] and the `projection` [batch, num_views, p];
    views may also be a tuple of view groups of several resolutions (multi-crop,
    `supcon_tf.views.MultiCrop`): the encoder runs once per group, the features are
    concatenated along the view axis in group order (the encoder must accept every
    group's image size, e.g. `input_shape=(None, None, C)`);
    `model(images)` / `model.predict(images)` with images [batch, H, W, C] returns
    the representation [batch, r], the one evaluated downstream.

    With an `augmenter` (a layer mapping images [batch, H, W, C] to views
    [batch, num_views, H', W', C], e.g. `supcon_tf.views.MultiView`), training
    batches may be plain images: the views are drawn on the accelerator inside
    the compiled step. Evaluation batches still come as views.

    With a `probe` (a number of classes, a `LinearHead` or a
    `supcon_tf.evaluation.OnlineProbe`), a linear classifier also learns from the
    stop-gradient representation of view 0 (`y_pred["probe_logits"]`); its
    cross-entropy is added to the loss without touching the encoder's gradients,
    and `probe_loss` / `probe_top1` are reported every epoch. Batches must then
    carry class ids.

    `fit` checks in-memory inputs first (`supcon_tf.methods.guards.check_arrays`) and
    stops with `NonFiniteLossError` at the first step whose loss is NaN or infinite;
    a non-finite input or projection always makes the loss NaN, so NaN images cannot
    train silently. Methods with `requires_labels` reject batches without labels.
    """

    min_views = 2
    default_loss = None
    requires_labels = False
    # State the forward pass advances every step (a queue, a teacher), named for errors:
    # Keras' `gradient_accumulation_steps` would advance it once per micro-batch.
    step_state = None

    @classmethod
    def views_needed(cls, method_kwargs):
        """The views per sample the method built with `method_kwargs` needs (what a
        config's `views.num_views` is checked against before anything is built)."""
        del method_kwargs
        return cls.min_views

    def __init__(self, encoder, head=None, loss=None, augmenter=None, probe=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, keras.layers.Layer):
            raise ValueError("`encoder` must be a Keras model or layer mapping images to a "
                             f"representation (see `supcon_tf.encoders.get`); received "
                             f"{type(encoder).__name__}.")
        self.encoder = encoder
        self.head = head if head is not None else ProjectionHead()
        self.method_loss = loss if loss is not None else self.default_loss()
        self.augmenter = augmenter
        self.probe = as_probe(probe)

    def build(self, input_shape):
        """Builds every part from images [b, H, W, C] or views [b, V, H, W, C].

        Image input alone would only reach the encoder; the head (and probe) are
        built too, so `fit` on images with an on-device augmenter needs no warm-up call.
        """
        input_shape = tuple(input_shape)
        if len(input_shape) == 4 and self.augmenter is not None:
            self.augmenter.build(input_shape)
            input_shape = tuple(self.augmenter.compute_output_shape(input_shape))
        if isinstance(input_shape[0], (list, tuple)):  # View groups: the first one's images.
            input_shape = tuple(input_shape[0])
        image_shape = (None, *input_shape[-3:])
        if not self.encoder.built:
            self.encoder.build(image_shape)
        representation = tuple(self.encoder.compute_output_shape(image_shape))
        for part in (self.head, self.probe):
            if part is not None and not part.built:
                part.build(representation)
        self.built = True

    def input_views(self, inputs, training=False):
        """The view groups of `inputs` (drawn by the augmenter from plain images when
        training with one), or None for plain images to represent."""
        images = not isinstance(inputs, (list, tuple)) and len(inputs.shape) == 4
        if images and training and self.augmenter is not None:
            inputs = self.augmenter(inputs, training=True)
        elif images:
            return None
        return view_groups(inputs, 1, "inputs")

    def call(self, inputs, training=False):
        groups = self.input_views(inputs, training)
        if groups is None:
            return self.encoder(inputs, training=training)
        encoded = []
        for group in groups:  # One encoder call per resolution.
            num_views, *image_shape = group.shape[1:]
            r = self.encoder(ops.reshape(group, (-1, *image_shape)), training=training)
            encoded.append(ops.reshape(r, (-1, num_views, r.shape[-1])))
        representation = encoded[0] if len(encoded) == 1 else ops.concatenate(encoded, axis=1)
        num_views = representation.shape[1]
        flat = ops.reshape(representation, (-1, representation.shape[-1]))
        projection = self.head(flat, training=training)
        outputs = {
            "representation": representation,
            "projection": ops.reshape(projection, (-1, num_views, projection.shape[-1])),
        }
        if self.probe is not None:
            outputs["probe_logits"] = self.probe(outputs["representation"])
        return outputs

    def compile(self, optimizer="sgd", loss="auto", **kwargs):
        """Like `Model.compile`; `loss="auto"` keeps the method's own loss."""
        if loss not in ("auto", None):
            self.method_loss = keras.losses.get(loss)
        super().compile(optimizer=optimizer, **kwargs)
        refuse_gradient_accumulation(self)

    def compute_method_loss(self, y, y_pred, sample_weight=None):
        """The method's loss on the outputs of `call`; scaled for distribution by Keras."""
        return self.method_loss(y, y_pred["projection"], sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.compute_method_loss(y, y_pred, sample_weight)
        if self.check_finite:  # NaN in, NaN out: `NonFiniteLossGuard` then stops `fit`.
            loss = nan_unless_finite(loss, x, y_pred["projection"])
        if self.probe is not None:  # Stop-gradient inside: trains the probe alone.
            loss = loss + self.probe.probe_loss(y, y_pred["probe_logits"], sample_weight)
        if self.losses:  # Regularization: its gradients are summed over replicas too.
            extra = ops.sum(ops.stack([ops.cast(l, "float32") for l in self.losses]))
            loss = loss + extra / distribute.num_replicas_in_sync()
        return loss

    def _check_batch(self, data, training):
        x, y, _ = unpack_batch(data)
        if self.requires_labels and y is None:  # (A probe checks its own labels.)
            raise ValueError(
                f"{type(self).__name__} needs labels: batches must be `(views, labels)` with "
                "class ids or one-/multi-hot rows. Without labels, use SimCLR "
                "(method 'simclr'), whose positives are a sample's own views."
            )
        images = not isinstance(x, (list, tuple)) and len(x.shape) == 4
        if training and self.augmenter is not None and images:
            return  # Views are drawn inside the step.
        view_groups(x, self.min_views)

    # The backends' own steps with the batch checked first. TensorFlow calls
    # step(data); JAX calls step(state, data).
    def train_step(self, *args):
        self._check_batch(args[-1], training=True)
        return super().train_step(*args)

    def test_step(self, *args):
        self._check_batch(args[-1], training=False)
        return super().test_step(*args)

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            head=keras.saving.serialize_keras_object(self.head),
            loss=keras.saving.serialize_keras_object(self.method_loss),
            augmenter=keras.saving.serialize_keras_object(self.augmenter),
            probe=keras.saving.serialize_keras_object(self.probe),
        )
        return config

    def compile_from_config(self, config):
        restore_compile(self, config)

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        for key in ("encoder", "head", "loss", "augmenter", "probe"):
            config[key] = keras.saving.deserialize_keras_object(config.get(key))
        return cls(**config)
