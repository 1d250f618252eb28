"""Image-caption pairs for CLIP / SigLIP: the digits with template captions (the offline
demo), a folder of images with a captions file (CSV or JSON Lines), NumPy arrays (TFDS
caption datasets: `data.tfds_captions`).

Every source gives parallel lists (images or image paths, captions, labels), or a `tf.data`
of them; `pair_dataset` / `batch_pairs` turn them into a `tf.data` of `({"images",
"tokens"}, label)` batches, tokenized on the host. Several captions per image are allowed
(one pair each).
"""

import csv
import json
import os

import numpy as np

from supcon_tf.data.folder import EXTENSIONS
from supcon_tf.text.tokenizer import check_captions

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Captions of the training split, and the unseen ones of the test split.
TRAIN_TEMPLATES = ("a handwritten {}", "the digit {} written by hand", "a scan of a {}",
                   "a small picture of the number {}", "someone wrote a {}")
TEST_TEMPLATES = ("a drawing of the digit {}", "the number {} in handwriting",
                  "an image of a {}")
# Zero-shot prompts (CLIP's prompt ensembling: the class embedding is their mean).
PROMPT_TEMPLATES = ("a handwritten {}", "the digit {}", "the number {}")


def check_templates(templates, name="templates"):
    """Raises ValueError unless each template holds exactly one `{}` placeholder."""
    templates = list(templates)
    if not templates:
        raise ValueError(f"`{name}` is empty; give at least one template with a '{{}}' "
                         "placeholder for the class name.")
    for i, template in enumerate(templates):
        if not isinstance(template, str) or template.count("{}") != 1 or template.replace(
                "{}", "").count("{") or template.replace("{}", "").count("}"):
            raise ValueError(f"`{name}[{i}]` must hold exactly one '{{}}' placeholder for the "
                             f"class name, e.g. 'a photo of a {{}}'; received {template!r}.")
    return templates


def template_captions(labels, class_names, templates, seed=0):
    """One caption per label: a template (drawn with `seed`) filled with the class name."""
    templates = check_templates(templates)
    rng = np.random.default_rng(seed)
    choice = rng.integers(0, len(templates), size=len(labels))
    return [templates[t].format(class_names[int(y)]) for t, y in zip(choice, labels)]


def digits_pairs(split="train", seed=0):
    """(images uint8 [N, 8, 8, 1], captions, labels) of the digits; test captions come
    from templates training never saw."""
    from supcon_tf.data.digits import load_digits_arrays

    images, labels = load_digits_arrays(split)
    templates = TRAIN_TEMPLATES if split == "train" else TEST_TEMPLATES
    return images, template_captions(labels, DIGIT_NAMES, templates, seed), labels


def pairs_from_arrays(images, captions, labels=None):
    """Checks in-memory pairs: one non-empty caption per image; returns them as lists."""
    captions = check_captions(captions)
    if len(captions) != len(images):
        raise ValueError(f"`captions` must hold one caption per image; received "
                         f"{len(captions)} captions for {len(images)} images (an image "
                         "without a caption, or a caption without an image).")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"`labels` must hold one label per image; received {len(labels)} "
                         f"for {len(images)} images.")
    return images, captions, labels


def _read_rows(captions_file):
    """[(line, image, caption)] of a CSV (header image,caption) or JSON Lines file."""
    rows = []
    with open(captions_file, newline="", encoding="utf-8") as f:
        if captions_file.lower().endswith((".jsonl", ".json")):
            for line, text in enumerate(f, 1):
                if text.strip():
                    row = json.loads(text)
                    rows.append((line, row.get("image"), row.get("caption")))
        else:
            reader = csv.DictReader(f)
            if not {"image", "caption"} <= set(reader.fieldnames or ()):
                raise ValueError(f"`captions_file` {captions_file!r} must be a CSV with the "
                                 f"columns image,caption; received {reader.fieldnames}.")
            rows = [(i + 2, r["image"], r["caption"]) for i, r in enumerate(reader)]
    return rows


def pairs_from_folder(root, captions_file="captions.csv"):
    """(image paths, captions) of a folder and its captions file (relative to `root`).

    Each row names an image (a path relative to `root`) and one caption; an image may have
    several rows. Raises ValueError naming the row whose image is missing, the images
    without a caption, and empty captions.
    """
    path = captions_file if os.path.isabs(captions_file) else os.path.join(root, captions_file)
    if not os.path.isfile(path):
        raise ValueError(f"`captions_file` {path!r} does not exist; it must list image,caption "
                         "rows (CSV) or {\"image\": ..., \"caption\": ...} lines (JSON Lines).")
    files, captions = [], []
    for line, image, caption in _read_rows(path):
        full = os.path.join(root, image or "")
        if not image or not os.path.isfile(full):
            raise ValueError(f"`captions_file` {path!r} line {line} names the image {image!r}, "
                             f"which is not in the folder {root!r}.")
        check_captions([caption], name=f"captions_file line {line}: caption")
        files.append(os.path.normpath(full))
        captions.append(caption)
    images = {os.path.normpath(os.path.join(d, n)) for d, _, names in os.walk(root)
              for n in names if n.lower().endswith(EXTENSIONS)}
    missing = sorted(images - set(files))
    if missing:
        raise ValueError(f"{len(missing)} image(s) of the folder {root!r} have no caption in "
                         f"`captions_file` {path!r}: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else "") + ". Add a row for each, or "
                         "move them out of the folder.")
    return files, captions


def decode_image(encoded, image_size=None, channels=3):
    """Float32 [H, W, C] in [0, 1] of an encoded image (a string tensor: JPEG, PNG, ...),
    resized to `image_size` (H, W) when given; TensorFlow ops, for `tf.data`."""
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image = tf.cast(image, tf.float32) / 255.0
    return tf.image.resize(image, image_size) if image_size is not None else image


def read_image(path, image_size=None, channels=3):
    """`decode_image` of an image file (a string tensor)."""
    import tensorflow as tf

    return decode_image(tf.io.read_file(path), image_size, channels)


def pair_dataset(images, captions, tokenizer, batch_size, labels=None, shuffle_buffer=0,
                 seed=0, drop_remainder=True, image_size=None, channels=None):
    """`batch_pairs` of in-memory pairs: `images` are arrays or file paths. A warning says
    how many captions `tokenizer` truncates."""
    import tensorflow as tf

    tokenizer.warn_if_truncated(captions)
    labels = np.full(len(captions), -1, np.int64) if labels is None else np.asarray(labels)
    ds = tf.data.Dataset.from_tensor_slices((images, list(captions), labels))
    return batch_pairs(ds, tokenizer, batch_size, shuffle_buffer, seed, drop_remainder,
                       image_size, channels)


def batch_pairs(pairs, tokenizer, batch_size, shuffle_buffer=0, seed=0, drop_remainder=True,
                image_size=None, channels=None, encoded=False):
    """`tf.data` of ({"images": float32 [b, H, W, C] in [0, 1], "tokens": int32 [b, L]},
    labels) batches of a `tf.data` of (image, caption, label) `pairs`, shuffled first.

    An image is a uint8 array, a file path, or with `encoded` the bytes of an encoded
    image; strings are decoded (and resized to `image_size`) after the shuffle, on the
    host, and the captions tokenized by `tokenizer` there.
    """
    import tensorflow as tf

    if shuffle_buffer:
        pairs = pairs.shuffle(shuffle_buffer, seed=seed)
    decode = decode_image if encoded else read_image

    def load(image, caption, label):
        if image.dtype == tf.string:
            return decode(image, image_size, channels or 3), caption, label
        return tf.cast(image, tf.float32) / 255.0, caption, label

    ds = pairs.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder)
    return ds.map(lambda x, c, y: ({"images": x, "tokens": tokenizer(c)}, y)).prefetch(2)
