"""A CLIP / SigLIP model as a SavedModel with `embed_image`, `embed_text` (strings in: the
tokenizer's lookup table travels inside) and `zero_shot` (images and class prompts in,
logits out); it loads with `hub.load` or `tf.saved_model.load` without this package.

Written from the TensorFlow backend (the towers traced as they are) or the JAX one (Keras'
`ExportArchive` converts each tower with jax2tf onto tf.Variables holding the trained
values, as the image export does); tokenization and the logits are TensorFlow ops in both.
"""

import dataclasses

import keras

# The folder of the image-text SavedModel inside a run's export folder.
IMAGE_TEXT_FOLDER = "image_text"


@dataclasses.dataclass
class _Towers:
    """The model as TensorFlow callables: float32 image and text embeddings, and the
    logit scale (as a log) and bias as tensors or variables."""

    image: object  # images [n, H, W, C] -> [n, p]
    text: object  # token ids int32 [m, L] -> [m, p]
    log_scale: object
    bias: object
    variables: list  # what the functions read, tracked by the saved module


def _tf_towers(model):
    import tensorflow as tf

    return _Towers(
        image=lambda x: tf.cast(model.encode_images(x, training=False)[1], tf.float32),
        text=lambda tokens: tf.cast(model.encode_text(tokens, training=False), tf.float32),
        log_scale=model.logit_scale.log_scale, bias=model.logit_scale.bias,
        variables=list(model.variables))


def _jax_towers(model, image_shape):
    import tensorflow as tf

    from supcon_tf.export.forward import jax_archive

    archive, as_tf = jax_archive([model.encoder, model.head, model.text_encoder,
                                  model.text_head, model.logit_scale])
    image = archive.add_endpoint(
        "embed_image",
        lambda x: keras.ops.cast(model.encode_images(x, training=False)[1], "float32"),
        input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)])
    text = archive.add_endpoint(
        "embed_text",
        lambda tokens: keras.ops.cast(model.encode_text(tokens, training=False), "float32"),
        input_signature=[tf.TensorSpec([None, model.tokenizer.context_length], tf.int32)])
    return _Towers(image=image, text=text, log_scale=as_tf[id(model.logit_scale.log_scale)],
                   bias=as_tf[id(model.logit_scale.bias)], variables=list(archive.variables))


def export_image_text(model, path, image_shape):
    """Writes `model` (a trained `methods.CLIP` with a tokenizer) to `path`.

    Signatures (images float32 [n, H, W, C] in [0, 1], as in training):
      embed_image(images) -> {"embeddings": [n, p] L2-normalized}
      embed_text(captions string [m]) -> {"embeddings": [m, p] L2-normalized}
      zero_shot(images, prompts string [k]) -> {"logits": [n, k]}: the model's logits,
        exp(log_scale) * cosine (+ bias for SigLIP), so softmax (CLIP) or sigmoid
        (SigLIP) gives probabilities.
    """
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ValueError("export_image_text writes a TensorFlow SavedModel from Keras' "
                         f"TensorFlow or JAX backend; received backend {backend!r}. Set "
                         "KERAS_BACKEND=tensorflow or jax.")
    if getattr(model, "tokenizer", None) is None:
        raise ValueError("`model` must hold its tokenizer (methods.CLIP(..., tokenizer=...)) "
                         "for `embed_text` to take strings.")
    import tensorflow as tf

    tokenizer = model.tokenizer
    towers = _tf_towers(model) if backend == "tensorflow" else _jax_towers(model, image_shape)
    images_spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")

    class ImageText(tf.Module):
        def __init__(self):
            super().__init__()
            self.table = tokenizer.table
            self.model_variables = towers.variables

        def _text(self, captions):
            return towers.text(tokenizer(captions))

        @tf.function(input_signature=[images_spec])
        def embed_image(self, images):
            return {"embeddings": towers.image(images)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions")])
        def embed_text(self, captions):
            return {"embeddings": self._text(captions)}

        @tf.function(input_signature=[images_spec, tf.TensorSpec([None], tf.string,
                                                                 name="prompts")])
        def zero_shot(self, images, prompts):
            similarity = tf.matmul(towers.image(images), self._text(prompts),
                                   transpose_b=True)
            scale = tf.exp(tf.cast(tf.convert_to_tensor(towers.log_scale), tf.float32))
            return {"logits": scale * similarity
                    + tf.cast(tf.convert_to_tensor(towers.bias), tf.float32)}

    module = ImageText()
    tf.saved_model.save(module, path, signatures={
        "embed_image": module.embed_image, "embed_text": module.embed_text,
        "zero_shot": module.zero_shot})
    return path
