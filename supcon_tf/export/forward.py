"""The exported forward pass, per backend: float32 images -> the serving outputs, in TF.

On TensorFlow the Keras layers are traced as they are. On JAX, Keras' own
`ExportArchive` converts them with jax2tf onto tf.Variables holding the trained
values. Either way `Forward` gives the SavedModel writer one function and the
variable lists TF Hub expects, so the signatures are built once for both.
"""

import dataclasses

import keras

from supcon_tf.export.formats import serving_model


@dataclasses.dataclass
class Forward:
    """`call(images, training)` -> {output: tf.Tensor}, and the TF variables it reads.

    With `training=True` only "unnormalized_embeddings" is needed (TF Hub's `__call__`).
    """

    call: object
    variables: list  # those of the encoder (and preprocessing): TF Hub's `variables`
    trainable_variables: list
    head_variables: list
    regularization_losses: list  # zero-argument functions


def unique_variables(variables):
    """`variables` without repeats (by identity), in order."""
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def _tf_forward(encoder, head, classifier_head, preprocessing):
    import tensorflow as tf

    body = [l for l in (preprocessing, encoder) if l is not None]
    heads = [l for l in (head, classifier_head) if l is not None]
    trainable = unique_variables(v for l in body for v in l.trainable_variables)

    def call(x, training):
        if preprocessing is not None:
            x = preprocessing(x, training=training)
        rep = tf.cast(encoder(x, training=training), tf.float32)
        out = {"unnormalized_embeddings": rep, "embeddings": tf.math.l2_normalize(rep, -1)}
        if head is not None:
            proj = tf.cast(head(rep, training=training), tf.float32)
            out["projection"] = tf.math.l2_normalize(proj, -1)
        if classifier_head is not None:
            logits = tf.cast(classifier_head(rep, training=training), tf.float32)
            out["logits"] = logits
            out["probabilities"] = tf.nn.softmax(logits, -1)
        return out

    def regularization_loss(variable):
        return tf.function(lambda: tf.cast(variable.regularizer(variable), tf.float32),
                           input_signature=[])

    return Forward(
        call=call,
        variables=unique_variables(v for l in body for v in l.variables),
        trainable_variables=trainable,
        head_variables=unique_variables(v for l in heads for v in l.variables),
        regularization_losses=[regularization_loss(v) for v in trainable
                               if getattr(v, "regularizer", None) is not None])


def jax_archive(layers):
    """(Keras `ExportArchive` tracking `layers`, {id(Keras variable): its tf.Variable}):
    on JAX, endpoints added to the archive run the layers through jax2tf on those
    tf.Variables, which hold the trained values."""
    archive = keras.export.ExportArchive()
    for layer in layers:
        archive.track(layer)
    # The archive's tf.Variables, in the order of the Keras variables it tracked.
    as_tf = {}
    for kind in ("trainable_variables", "non_trainable_variables"):
        mine = [v for l in layers for v in getattr(l, kind)]
        as_tf.update(zip(map(id, mine), getattr(archive, kind)))
    return archive, as_tf


def _jax_forward(encoder, head, classifier_head, preprocessing, image_shape):
    import tensorflow as tf

    body = [l for l in (preprocessing, encoder) if l is not None]
    heads = [l for l in (head, classifier_head) if l is not None]
    archive, as_tf = jax_archive(body + heads)
    spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")
    inference = archive.add_endpoint(
        "inference", serving_model(encoder, head, classifier_head, preprocessing,
                                   image_shape=image_shape), input_signature=[spec])

    def train_fn(x):
        x = preprocessing(x, training=True) if preprocessing is not None else x
        return keras.ops.cast(encoder(x, training=True), "float32")

    training = archive.add_endpoint("training", train_fn, input_signature=[spec])

    def call(x, training_mode):
        if training_mode:
            return {"unnormalized_embeddings": training(x)}
        return dict(inference(x))

    def tf_variables(layers, kind):
        return unique_variables(as_tf[id(v)] for l in layers for v in getattr(l, kind))

    return Forward(
        call=call,
        variables=tf_variables(body, "variables"),
        trainable_variables=tf_variables(body, "trainable_variables"),
        head_variables=tf_variables(heads, "variables"),
        regularization_losses=[])  # Regularizers are JAX functions; none are saved.


def forward(encoder, head, classifier_head, preprocessing, image_shape):
    """The `Forward` of the current Keras backend (TensorFlow or JAX)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tf_forward(encoder, head, classifier_head, preprocessing)
    if backend == "jax":
        return _jax_forward(encoder, head, classifier_head, preprocessing, image_shape)
    raise ValueError(
        "SavedModel export needs Keras' TensorFlow or JAX backend; received backend "
        f"{backend!r}. Set KERAS_BACKEND=tensorflow or jax.")
