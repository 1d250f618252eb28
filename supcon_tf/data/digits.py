"""scikit-learn's bundled handwritten digits: the offline default dataset.

1,797 real 8x8 grayscale digits, values 0..16, scaled to uint8 0..255 [8, 8, 1].
The split is a fixed stratified permutation (seed 0): 1,437 train, 360 test, the
same on every machine, so results are comparable without any download.
"""

import dataclasses

import numpy as np

from supcon_tf.data.arrays import from_arrays
from supcon_tf.data.convert import convert
from supcon_tf.validation import check_choice

TEST_SIZE = 360
SPLIT_SEED = 0


def split_indices():
    """{"train": indices, "test": indices}: a stratified, seeded split of the 1,797 digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = load_digits().target
    train, test = train_test_split(np.arange(len(target)), test_size=TEST_SIZE,
                                   random_state=SPLIT_SEED, stratify=target)
    return {"train": np.sort(train), "test": np.sort(test)}


def load_digits_arrays(split="train"):
    """(images uint8 [N, 8, 8, 1], labels int64 [N]) for `split` ("train", "test" or "all")."""
    from sklearn.datasets import load_digits

    check_choice("split", split, ("train", "test", "all"))
    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    if split != "all":
        idx = split_indices()[split]
        images, labels = images[idx], labels[idx]
    return images, labels


def load_digits(split="train", image_size=None, to_rgb=False):
    """(dataset, info) for the digits split; info.split_sizes has both splits;
    `image_size` and `to_rgb` as in `data.convert`."""
    images, labels = load_digits_arrays(split)
    ds, info = from_arrays(images, labels, name="digits",
                           class_names=[str(i) for i in range(10)], split=split)
    sizes = {"train": 1797 - TEST_SIZE, "test": TEST_SIZE}
    return convert(ds, dataclasses.replace(info, split_sizes=sizes), image_size, to_rgb)
