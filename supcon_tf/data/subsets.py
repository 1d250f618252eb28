"""Class-balanced labelled subsets (semi-supervised fine-tuning on 1% / 10% of labels).

SimCLR's 1% and 10% ImageNet subsets hold the same share of every class. A subset
here is drawn once from a seed, as sorted indices into the split's order, so that it
can be written down and reused (`take` keeps those elements of a dataset).
"""

import numbers

import numpy as np

from supcon_tf.validation import check_int


def dataset_labels(ds):
    """The labels of a dataset of `(image, label)`, in order (one pass over them)."""
    return np.fromiter(ds.map(lambda x, y, *_: y).as_numpy_iterator(), np.int64)


def labelled_subset(labels, label_fraction=1.0, labels_per_class=0, seed=0):
    """Sorted indices of a class-balanced subset of `labels`.

    `labels_per_class` > 0: that many samples of every class (at most its size);
    else `label_fraction` in (0, 1] of every class, rounded, at least one each.
    The draw is a fixed function of (`labels`, the two sizes, `seed`).
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    per_class = check_int("labels_per_class", labels_per_class, minimum=0)
    if per_class:
        if per_class > counts.min():
            raise ValueError(
                f"`labels_per_class` must be at most the {counts.min()} samples of the "
                f"smallest class (class {classes[counts.argmin()]}); received "
                f"labels_per_class={per_class}.")
        take = np.full(len(classes), per_class)
    else:
        if (isinstance(label_fraction, bool) or not isinstance(label_fraction, numbers.Real)
                or not 0.0 < label_fraction <= 1.0):
            raise ValueError(f"`label_fraction` must be a number in (0, 1]; received "
                             f"label_fraction={label_fraction!r}.")
        take = np.maximum(1, np.round(label_fraction * counts).astype(np.int64))
    rng = np.random.default_rng(int(seed))
    chosen = [rng.choice(np.flatnonzero(labels == c), int(k), replace=False)
              for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def take(ds, indices, size):
    """The elements of `ds` (of `size` elements) at `indices`, in their order."""
    import tensorflow as tf

    mask = np.zeros(int(size), bool)
    mask[np.asarray(indices, np.int64)] = True
    keep = tf.constant(mask)

    def kept(index, element):
        return keep[index]

    def element_of(index, element):
        return element

    return ds.enumerate().filter(kept).map(element_of)
