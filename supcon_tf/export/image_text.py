"""A CLIP / SigLIP model as a SavedModel with `embed_image`, `embed_text` (strings in: the
tokenizer's lookup table travels inside) and `zero_shot` (images and class prompts in,
logits out); it loads with `hub.load` or `tf.saved_model.load` without this package.
TensorFlow backend only (a SavedModel is TensorFlow's format).
"""

import keras


def export_image_text(model, path, image_shape):
    """Writes `model` (a trained `methods.CLIP` with a tokenizer) to `path`.

    Signatures (images float32 [n, H, W, C] in [0, 1], as in training):
      embed_image(images) -> {"embeddings": [n, p] L2-normalized}
      embed_text(captions string [m]) -> {"embeddings": [m, p] L2-normalized}
      zero_shot(images, prompts string [k]) -> {"logits": [n, k]}: the model's logits,
        exp(log_scale) * cosine (+ bias for SigLIP), so softmax (CLIP) or sigmoid
        (SigLIP) gives probabilities.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError("export_image_text writes a TensorFlow SavedModel; run it with "
                         f"KERAS_BACKEND=tensorflow (now {keras.backend.backend()!r}).")
    if getattr(model, "tokenizer", None) is None:
        raise ValueError("`model` must hold its tokenizer (methods.CLIP(..., tokenizer=...)) "
                         "for `embed_text` to take strings.")
    import tensorflow as tf

    tokenizer = model.tokenizer
    images_spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")

    class ImageText(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.table = tokenizer.table
            self.model_variables = list(model.variables)

        def _text(self, captions):
            return model.encode_text(tokenizer(captions), training=False)

        @tf.function(input_signature=[images_spec])
        def embed_image(self, images):
            return {"embeddings": model.encode_images(images, training=False)[1]}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions")])
        def embed_text(self, captions):
            return {"embeddings": self._text(captions)}

        @tf.function(input_signature=[images_spec, tf.TensorSpec([None], tf.string,
                                                                 name="prompts")])
        def zero_shot(self, images, prompts):
            image = model.encode_images(images, training=False)[1]
            similarity = tf.matmul(image, self._text(prompts), transpose_b=True)
            scale = tf.exp(tf.convert_to_tensor(model.logit_scale.log_scale))
            return {"logits": scale * similarity
                    + tf.convert_to_tensor(model.logit_scale.bias)}

    module = ImageText()
    tf.saved_model.save(module, path, signatures={
        "embed_image": module.embed_image, "embed_text": module.embed_text,
        "zero_shot": module.zero_shot})
    return path
