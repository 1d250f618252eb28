"""A CLIP model exported with string-in text signatures, loaded with hub.load in a process
where supcon_tf cannot be imported."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from supcon_tf import encoders, methods
from supcon_tf.evaluation import zero_shot
from supcon_tf.export.image_text import export_image_text
from supcon_tf.heads import ProjectionHead
from supcon_tf.text import WordTokenizer
from tolerance import assert_close

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="a SavedModel is written on the TensorFlow backend")

CONSUMER = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "supcon_tf":
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import numpy as np, tensorflow as tf, tensorflow_hub as hub
module = hub.load(sys.argv[1])
images = np.load(sys.argv[2])
captions = tf.constant(["a seven", "the digit one", "zebra"])
out = {"signatures": sorted(module.signatures.keys()),
       "image": module.signatures["embed_image"](images=tf.constant(images))["embeddings"].numpy().tolist(),
       "text": module.signatures["embed_text"](captions=captions)["embeddings"].numpy().tolist(),
       "logits": module.signatures["zero_shot"](images=tf.constant(images), prompts=captions[:2])["logits"].numpy().tolist()}
print(json.dumps(out))
"""


@pytest.mark.parametrize("loss", ["siglip"])
def test_export_loads_without_the_package(tmp_path, loss):
    keras.utils.set_random_seed(0)
    tokenizer = WordTokenizer.from_captions(["a seven", "the digit one"], 6)
    model = methods.CLIP(encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4,), dim=8),
                         ProjectionHead(hidden_dims=(), output_dim=4), tokenizer=tokenizer,
                         loss=loss, text_encoder=dict(width=8, num_layers=1, num_heads=2))
    images = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")
    model({"images": images, "tokens": tokenizer(["a seven"] * 3).numpy()})
    export_image_text(model, str(tmp_path / "export"), (8, 8, 1))
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run([sys.executable, "-I", "-c", CONSUMER, str(tmp_path / "export"),
                             str(tmp_path / "images.npy")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["signatures"] == ["embed_image", "embed_text", "zero_shot"]
    image = zero_shot.embed_images(model, images)
    text = zero_shot.embed_texts(model, ["a seven", "the digit one", "zebra"])
    assert_close(got["image"], image, terms=64)
    assert_close(got["text"], text, terms=64)
    scale = float(np.exp(keras.ops.convert_to_numpy(model.logit_scale.log_scale)))
    bias = float(keras.ops.convert_to_numpy(model.logit_scale.bias))
    assert bias == -10.0
    assert_close(got["logits"], scale * image @ text[:2].T + bias, terms=64, magnitude=10.0)
