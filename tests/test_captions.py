"""Image-caption data (digits templates, folder + captions file, arrays) with their errors,
and the image-text evaluation (zero-shot, Recall@k)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from supcon_tf import encoders, methods
from supcon_tf.data import captions as cap
from supcon_tf.evaluation import zero_shot
from supcon_tf.heads import ProjectionHead
from supcon_tf.text import WordTokenizer
from tolerance import assert_close


def test_digit_captions_use_unseen_templates_at_test_time():
    images, captions, labels = cap.digits_pairs("test")
    assert len(images) == len(captions) == len(labels) == 360
    assert captions[:3] == cap.digits_pairs("test")[1][:3]  # Seeded.
    train_words = {c for c in cap.digits_pairs("train")[1]}
    assert not train_words & set(captions)
    for caption, label in zip(captions, labels):
        assert cap.DIGIT_NAMES[label] in caption.split()
        assert any(caption == t.format(cap.DIGIT_NAMES[label]) for t in cap.TEST_TEMPLATES)


@pytest.mark.parametrize("bad", ["a photo", "a {} and {}", "a {0}", "{x} digit"])
def test_template_without_one_placeholder_is_refused(bad):
    with pytest.raises(ValueError, match=r"`templates\[1\]` must hold exactly one '\{\}'"):
        cap.template_captions([0], cap.DIGIT_NAMES, ["a {}", bad])


def _folder(tmp_path, rows, kind="csv", extra_images=()):
    for name in {r[0] for r in rows if r[0] != "ghost.png"} | set(extra_images):
        tf.io.write_file(str(tmp_path / name),
                         tf.io.encode_png(np.full((4, 4, 3), 7, np.uint8)))
    if kind == "csv":
        lines = ["image,caption"] + [f"{i},{c}" for i, c in rows]
        (tmp_path / "captions.csv").write_text("\n".join(lines) + "\n")
        return "captions.csv"
    (tmp_path / "captions.jsonl").write_text(
        "\n".join(json.dumps({"image": i, "caption": c}) for i, c in rows) + "\n")
    return "captions.jsonl"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_folder_with_captions_file(tmp_path, kind):
    name = _folder(tmp_path, [("a.png", "a red square"), ("a.png", "something red"),
                              ("b.png", "another one")], kind)
    files, captions = cap.pairs_from_folder(str(tmp_path), name)
    assert [f.split("/")[-1] for f in files] == ["a.png", "a.png", "b.png"]
    assert captions == ["a red square", "something red", "another one"]
    tokenizer = WordTokenizer.from_captions(captions, context_length=5)
    (x, y), = pair_batches = list(cap.pair_dataset(files, captions, tokenizer, 3))
    assert x["images"].shape == (3, 4, 4, 3)
    assert_close(x["images"].numpy(), np.full((3, 4, 4, 3), 7 / 255))
    np.testing.assert_array_equal(x["tokens"].numpy(), tokenizer(captions).numpy())
    del pair_batches


def test_folder_errors_name_the_image_and_row(tmp_path):
    name = _folder(tmp_path, [("a.png", "a red square"), ("ghost.png", "missing")])
    with pytest.raises(ValueError, match=r"line 3 names the image 'ghost.png'"):
        cap.pairs_from_folder(str(tmp_path), name)
    name = _folder(tmp_path, [("a.png", "a red square")], extra_images=["b.png"])
    with pytest.raises(ValueError, match=r"1 image\(s\) .* have no caption.*b.png"):
        cap.pairs_from_folder(str(tmp_path), name)
    name = _folder(tmp_path, [("a.png", "a red square"), ("b.png", "  ")])
    with pytest.raises(ValueError, match=r"captions_file line 3: caption"):
        cap.pairs_from_folder(str(tmp_path), name)


def test_arrays_need_one_caption_per_image():
    images = np.zeros((3, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match=r"`captions` must hold one caption per image.*2 "
                                         r"captions for 3 images"):
        cap.pairs_from_arrays(images, ["a one", "a two"])
    with pytest.raises(ValueError, match=r"`captions\[1\]`"):
        cap.pairs_from_arrays(images, ["a one", "", "a two"])


def test_recall_at_k_hand_values():
    image = np.eye(3, dtype=np.float32)
    # Captions 0, 1 belong to image 0; caption 2 to image 1 but points at image 2.
    text = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 0.1, 0.995]], np.float32)
    got = zero_shot.image_text_recall(image, [0, 1, 2], text, [0, 0, 1], ks=(1, 2))
    # Images: 0 finds caption 0; 1's nearest is caption 1 (image 0's), then its own; 2 has
    # no caption (not a query). Captions: only 0 finds its image first; 1 and 2 second.
    assert got["image_to_text_recall@1"] == pytest.approx(1 / 2)
    assert got["image_to_text_recall@2"] == pytest.approx(1.0)
    assert got["text_to_image_recall@1"] == pytest.approx(1 / 3)
    assert got["text_to_image_recall@2"] == pytest.approx(1.0)


def test_zero_shot_is_prompt_ensembled_nearest_class():
    keras.utils.set_random_seed(0)
    tokenizer = WordTokenizer.from_captions(["a zero", "a one", "the number two"], 5)
    model = methods.CLIP(encoders.get("small_cnn", input_shape=(8, 8, 1), widths=(4,), dim=8),
                         ProjectionHead(hidden_dims=(), output_dim=4), tokenizer=tokenizer,
                         text_encoder=dict(width=8, num_layers=1, num_heads=2))
    images = np.random.default_rng(0).random((6, 8, 8, 1)).astype("float32")
    names, templates = ["zero", "one", "two"], ["a {}", "the number {}"]
    labels = np.array([0, 1, 2, 0, 1, 2])
    emb = zero_shot.embed_images(model, images)
    prompts = zero_shot.embed_texts(model, [t.format(n) for n in names for t in templates])
    classes = prompts.reshape(3, 2, -1).mean(1)
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    assert_close(zero_shot.class_embeddings(model, names, templates), classes)
    got = zero_shot.zero_shot_metrics(model, images, labels, names, templates)
    assert got["zero_shot_top1"] == pytest.approx(np.mean(np.argmax(emb @ classes.T, 1) == labels))
    assert got["num_templates"] == 2
    with pytest.raises(ValueError, match="templates"):
        zero_shot.zero_shot_metrics(model, images, labels, names, ["no placeholder"])
