"""TFDS caption datasets: a tiny `coco_captions` (COCO 2014's name, config, version and
features, Karpathy's splits) prepared here in a data_dir of its own, read as the real one.

The loaders are checked against the examples written (captions per image, the class of
the largest box, images without a box, the encoded images), the errors name the key and
the fixes, and configs/coco_clip.py:local runs end-to-end on it through what the command
line runs after parsing its flags (`session.prepare(...).execute()`, in-process).
"""

import json
import os
import types

import numpy as np
import pytest

from _tiny_tfds import COCO_NAMES, TINY_COCO_SPLITS, prepare_tiny_coco, tiny_coco_example
from supcon_tf import data
from supcon_tf.cli import adapters, build, session
from supcon_tf.cli.config_flag import parse_config
from supcon_tf.cli.errors import UsageError
from supcon_tf.data import tfds_captions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO_CLIP = os.path.join(ROOT, "configs", "coco_clip.py")
KEY, LABEL = "captions/text", "objects/label"


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    return prepare_tiny_coco(tmp_path_factory.mktemp("tfds"))


def _captions(split, i):
    return [c["text"] for c in tiny_coco_example(split, i)["captions"]]


def test_captions_labels_and_pairs_are_the_examples_written(coco_dir):
    per_image, labels = tfds_captions.read_captions("coco_captions", "train", KEY, coco_dir,
                                                    LABEL)
    # TFDS' order is its own (shuffled when written): match images by their captions.
    index = {tuple(_captions("train", i)): i for i in range(TINY_COCO_SPLITS["train"])}
    order = [index[tuple(texts)] for texts in per_image]
    assert sorted(order) == list(range(TINY_COCO_SPLITS["train"]))
    # The class of the largest box (i % 3; the smaller box holds the next class); the
    # first image has no box at all.
    assert labels.tolist() == [-1 if i == 0 else i % 3 for i in order]

    pairs = list(tfds_captions.pair_examples("coco_captions", "train", KEY, coco_dir,
                                             LABEL).as_numpy_iterator())
    assert [c.decode() for _, c, _ in pairs] == [c for texts in per_image for c in texts]
    assert [y for _, _, y in pairs] == [y for texts, y in zip(per_image, labels)
                                        for _ in texts]
    import tensorflow as tf

    # Each encoded image is its own: brightest in the channel of its class.
    for encoded, caption, _ in pairs:
        i = index[tuple(per_image[[caption.decode() in t for t in per_image].index(True)])]
        image = tf.io.decode_image(encoded).numpy()
        assert image.shape == (16, 12, 3) and image.mean((0, 1)).argmax() == i % 3
    shuffled = [c for _, c, _ in tfds_captions.pair_examples(
        "coco_captions", "train", KEY, coco_dir, LABEL, seed=1).as_numpy_iterator()]
    assert sorted(shuffled) == sorted(c for _, c, _ in pairs)

    images = tfds_captions.split_images("coco_captions", "val", (8, 6), 3, coco_dir)
    val, val_labels = tfds_captions.read_captions("coco_captions", "val", KEY, coco_dir, LABEL)
    assert images.shape == (6, 8, 6, 3) and 0.0 <= images.min() <= images.max() <= 1.0
    assert images.mean((1, 2)).argmax(1).tolist() == val_labels.tolist()  # Same order.
    assert len(val) == 6


def test_label_key_classifies_and_leaves_images_without_a_box_out(coco_dir):
    ds, info = data.load("coco_captions", split="train", data_dir=coco_dir, label_key=LABEL)
    assert info.num_classes == 80 and info.class_names == list(COCO_NAMES)
    assert info.image_shape == (None, None, 3)
    got = list(ds.as_numpy_iterator())
    assert info.split_sizes["train"] == len(got) == TINY_COCO_SPLITS["train"] - 1
    assert all(image.mean((0, 1)).argmax() == y for image, y in got)
    _, info = data.load("coco_captions", split="train+restval", data_dir=coco_dir,
                        label_key=LABEL)
    assert info.split_sizes["train+restval"] == 15  # 11 + 4 (every restval image has a box)


@pytest.mark.parametrize("call, match", [
    (lambda d: data.load("coco_captions", data_dir=d),
     r"'coco_captions' is not an image-classification dataset.*Pass `label_key`"),
    (lambda d: data.load("coco_captions", data_dir=d, label_key="objects/bbox"),
     r"`label_key`='objects/bbox'.*must name a ClassLabel feature; it is BBoxFeature"),
    (lambda d: tfds_captions.read_captions("coco_captions", "val", "caption", d),
     r"`caption_key`='caption' names no feature of TFDS dataset 'coco_captions'; its "
     r"features: captions/id, captions/text, image, image/filename"),
    (lambda d: tfds_captions.read_captions("coco_captions", "val", "captions/id", d),
     r"`caption_key`='captions/id'.*must name a string feature"),
])
def test_bad_keys_name_the_argument_and_what_there_is(coco_dir, call, match):
    with pytest.raises(ValueError, match=match):
        call(coco_dir)


def test_an_unprepared_caption_dataset_exits_2_with_the_tfds_message(tmp_path):
    empty = tmp_path / "empty_tfds"
    empty.mkdir()
    config = parse_config(COCO_CLIP + ":local", f"--config.dataset.data_dir={empty}")
    with pytest.raises(UsageError) as err:  # UsageError: exit status 2.
        build.load_data(config.dataset)
    message = str(err.value)
    for text in ("TFDS dataset 'coco_captions'", f"is not prepared in data_dir '{empty}'",
                 f"searched '{empty}/coco_captions/2014/1.1.0'",
                 "Pass --config.dataset.download=True", "Pass --config.dataset.data_dir=DIR",
                 "tfds build coco_captions --data_dir=DIR"):
        assert text in message, message
    with pytest.raises(data.DataError, match="is not prepared in data_dir"):
        tfds_captions.read_captions("coco_captions", "test", KEY, str(empty))


def test_coco_clip_local_runs_end_to_end_on_a_prepared_data_dir(coco_dir, tmp_path):
    """The config as written, with the data_dir, image and batch sizes a handful of tiny
    images take."""
    workdir = str(tmp_path / "run")
    config = parse_config(COCO_CLIP + ":local", f"--config.dataset.data_dir={coco_dir}",
                          "--config.pretrain.batch_size=8", "--config.linear.batch_size=8",
                          "--config.views.image_size=(16, 16)", "--config.eval.plots=False",
                          "--config.export.enabled=False")
    lines = []
    run = session.prepare(session.Settings(config=config, config_path=COCO_CLIP,
                                           config_given=True, workdir=workdir),
                          log=lines.append)
    result = run.execute()
    # train+restval: 12 + 4 images, 2 or 3 captions each: 40 pairs, 5 steps of 8.
    assert any("[pretrain] epoch 1/1 step 5/5" in line for line in lines), lines
    with open(os.path.join(workdir, "tokenizer.json")) as f:
        vocabulary = set(json.load(f)["vocabulary"])
    # Words of train and restval captions and of the class names; none of the test split.
    assert {"bicycle", "seen", "restval", "train", "traffic", "light"} <= vocabulary
    assert "test" not in vocabulary and "val" not in vocabulary
    metrics = result["metrics"]
    for key in ("zero_shot_top1", "image_to_text_recall@1", "image_to_text_recall@5",
                "text_to_image_recall@1", "linear_top1"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert metrics["num_templates"] == 4 and metrics["test_split"] == "test"


@pytest.mark.parametrize("dataset, key, match", [
    ("digits", "caption_key", r"`caption_key` applies to TFDS caption datasets \(e.g. "
                              r"coco_captions\); the dataset is 'digits'"),
    ("coco_captions", "captions_file", r"`captions_file` applies to folder datasets "
                                       r"\(folder:/path\); the dataset is 'tfds'"),
])
def test_a_captions_source_key_for_another_kind_of_dataset_is_refused(dataset, key, match):
    adapter = types.SimpleNamespace(run=types.SimpleNamespace(config={"dataset": {
        "name": dataset}}))
    kind = "tfds" if key == "caption_key" else "folder"
    with pytest.raises(ValueError, match=match):
        adapters.ImageText._source(adapter, kind, key)
