"""A CLIP model exported with string-in text signatures, loaded with hub.load in a process
where supcon_tf cannot be imported (written on JAX: tests/test_export_runtimes.py)."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from _clip_export import IMAGE_SHAPE, check_answers, reference, tiny_clip
from supcon_tf.export.image_text import IMAGE_TEXT_FOLDER, export_image_text
from supcon_tf.export.saved_model import check_replaceable

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="written on JAX by tests/test_export_runtimes.py")

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
    model, images = tiny_clip(loss)
    export_image_text(model, str(tmp_path / "export"), IMAGE_SHAPE)
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run([sys.executable, "-I", "-c", CONSUMER, str(tmp_path / "export"),
                             str(tmp_path / "images.npy")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["signatures"] == ["embed_image", "embed_text", "zero_shot"]
    want = reference(model, images)
    assert want["bias"] == -10.0 and want["scale"] == pytest.approx(10.0)  # SigLIP's init.
    check_answers(got["image"], got["text"], got["logits"], want)


def test_overwrite_replaces_an_export_holding_the_image_text_folder(tmp_path):
    """`--mode=export --overwrite` of a CLIP run: its export folder holds image_text/."""
    (tmp_path / "saved_model.pb").write_bytes(b"")
    (tmp_path / IMAGE_TEXT_FOLDER).mkdir()
    check_replaceable(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"is not an export \(it holds notes.txt\)"):
        check_replaceable(tmp_path)
