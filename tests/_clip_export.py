"""The image-text export tests' tiny CLIP model, what its signatures must answer, and the
check of their answers (tests/test_export_image_text.py on TensorFlow; _jax_export.py
writes it on JAX for tests/test_export_runtimes.py)."""

import os

import keras
import numpy as np

from supcon_tf import encoders, methods
from supcon_tf.evaluation import zero_shot
from supcon_tf.export.image_text import export_image_text
from supcon_tf.heads import ProjectionHead
from supcon_tf.text import WordTokenizer
from tolerance import assert_close

CAPTIONS = ["a seven", "the digit one", "zebra"]
IMAGE_SHAPE = (8, 8, 1)


def tiny_clip(loss):
    """(a built CLIP model with its tokenizer, float images [3, 8, 8, 1]), seeded."""
    keras.utils.set_random_seed(0)
    tokenizer = WordTokenizer.from_captions(CAPTIONS[:2], 6)
    model = methods.CLIP(encoders.get("small_cnn", input_shape=IMAGE_SHAPE, widths=(4,), dim=8),
                         ProjectionHead(hidden_dims=(), output_dim=4), tokenizer=tokenizer,
                         loss=loss, text_encoder=dict(width=8, num_layers=1, num_heads=2))
    images = np.random.default_rng(0).random((3, *IMAGE_SHAPE)).astype("float32")
    model({"images": images, "tokens": tokenizer(CAPTIONS[:1] * 3).numpy()})
    return model, images


def reference(model, images):
    """What the signatures must answer: image and text embeddings, scale, bias."""
    scalar = lambda v: float(keras.ops.convert_to_numpy(v))  # noqa: E731
    return {"image": zero_shot.embed_images(model, images),
            "text": zero_shot.embed_texts(model, CAPTIONS),
            "scale": np.exp(scalar(model.logit_scale.log_scale)),
            "bias": scalar(model.logit_scale.bias)}


def write(out_dir, loss="siglip"):
    """OUT_DIR/image_text (the export of `tiny_clip(loss)`) and OUT_DIR/image_text.npz
    (the images and `reference`), for `check_answers` in another process."""
    model, images = tiny_clip(loss)
    export_image_text(model, os.path.join(out_dir, "image_text"), IMAGE_SHAPE)
    np.savez(os.path.join(out_dir, "image_text.npz"), images=images,
             **reference(model, images))


def check_answers(image, text, logits, want):
    """Answers to embed_image(images), embed_text(CAPTIONS) and zero_shot(images,
    CAPTIONS[:2]) are those of the in-memory model (`want`, from `reference`)."""
    assert_close(np.asarray(image), want["image"], terms=64)
    assert_close(np.asarray(text), want["text"], terms=64)
    assert_close(np.asarray(logits), want["scale"] * want["image"] @ want["text"][:2].T
                 + want["bias"], terms=64, magnitude=10.0)
