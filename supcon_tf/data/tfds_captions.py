"""Image-caption pairs of a TFDS caption dataset (coco_captions: about 5 captions an image).

`caption_key` is the path of the captions' feature ("captions/text": the `text` of each
element of the `captions` Sequence; a Text feature of its own works too), `label_key` that
of the image's class (as in `data.tfds`; without it the label is -1). Every caption of an
image is one pair. `read_captions` reads a split's captions and labels without decoding an
image (the vocabulary, the pair count), `pair_examples` gives one (encoded image, caption,
label) element per caption, to shuffle before decoding, and `split_images` decodes each
image of a split once (retrieval). An unprepared dataset raises `data.tfds`' `DataError`.
"""

import numpy as np

from supcon_tf.data.captions import decode_image
from supcon_tf.data.tfds import (feature_at, get_builder, label_reader, open_split,
                                 skip_images, value_at)
from supcon_tf.text.tokenizer import check_captions


def _open(name, data_dir, caption_key, label_key):
    """(builder, fn(example) -> captions string [n], fn(example) -> int64 label)."""
    import tensorflow as tf

    builder = get_builder(name, data_dir)
    text, _ = feature_at(builder, caption_key, name="caption_key")
    if getattr(text, "tf_dtype", None) != tf.string:
        raise ValueError(f"`caption_key`={caption_key!r} of TFDS dataset {name!r} must name "
                         f"a string feature (the captions); it is {type(text).__name__} of "
                         f"{getattr(text, 'tf_dtype', None)!r}.")
    if "image" not in builder.info.features:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature.")
    read_label = (label_reader(builder, label_key)[0] if label_key is not None
                  else lambda ex: tf.constant(-1, tf.int64))
    return (builder, lambda ex: tf.reshape(value_at(ex, caption_key), [-1]),
            lambda ex: tf.cast(read_label(ex), tf.int64))


def read_captions(name, split, caption_key, data_dir=None, label_key=None):
    """(captions of each image [[str]], labels int64 [n], -1 for none) of `split`, in
    TFDS' order, images not decoded; ValueError naming the image for one without a
    caption, or an empty caption."""
    builder, captions, label = _open(name, data_dir, caption_key, label_key)
    ds = open_split(builder, split, decoders=skip_images(builder))
    per_image, labels = [], []
    for i, (texts, y) in enumerate(ds.map(lambda ex: (captions(ex), label(ex)))
                                   .as_numpy_iterator()):
        where = f"TFDS dataset {name!r} split {split!r} image {i}: `caption_key`={caption_key!r}"
        if not len(texts):
            raise ValueError(f"{where} holds no caption; every image needs at least one.")
        per_image.append(check_captions(list(texts), name=where))
        labels.append(y)
    return per_image, np.array(labels, np.int64)


def pair_examples(name, split, caption_key, data_dir=None, label_key=None, seed=None):
    """`tf.data` of (encoded image, caption, int64 label): one element per caption, in
    TFDS' order, or with `seed` from shuffled files (for `captions.batch_pairs(...,
    encoded=True)`)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder, captions, label = _open(name, data_dir, caption_key, label_key)
    shuffle = seed is not None
    ds = open_split(builder, split, decoders=skip_images(builder), shuffle_files=shuffle,
                    read_config=tfds.ReadConfig(shuffle_seed=seed) if shuffle else None)

    def per_caption(ex):
        texts = captions(ex)
        n = tf.shape(texts)[0]
        return tf.data.Dataset.from_tensor_slices(
            (tf.fill([n], ex["image"]), texts, tf.fill([n], label(ex))))

    return ds.flat_map(per_caption)


def split_images(name, split, image_size, channels=3, data_dir=None):
    """Float32 images [n, H, W, C] in [0, 1] of `split`, each once, in TFDS' order (that
    of `read_captions`), decoded as in training and resized to `image_size`."""
    import tensorflow as tf

    builder = get_builder(name, data_dir)
    ds = open_split(builder, split, decoders=skip_images(builder)).map(
        lambda ex: decode_image(ex["image"], image_size, channels),
        num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    return np.concatenate(list(ds.as_numpy_iterator()))
