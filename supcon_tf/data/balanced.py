"""Class-balanced batches for metric learning: P classes x K samples per batch.

Batch-hard triplets, multi-similarity and circle losses need positives for every
anchor; uniformly shuffled batches of many classes often have none. `class_balanced`
turns a dataset of `(image, label)` into an endless stream whose every consecutive
`classes_per_batch * samples_per_class` elements are `samples_per_class` samples of
each of `classes_per_batch` distinct classes (drawn uniformly, without replacement
within a batch); batch it with that size and no shuffle. Each class is its own
shuffled, repeated `tf.data` pipeline (a class with fewer than K samples repeats
them), so the labels are read once up front to find the classes present.
"""

import numpy as np

from supcon_tf.validation import check_int, check_positive


def class_counts(ds):
    """(sorted distinct labels, their sample counts) of a dataset of `(image, label)`
    (one pass over the labels)."""
    from supcon_tf.data.subsets import dataset_labels

    return np.unique(dataset_labels(ds), return_counts=True)


def class_ids(ds):
    """The sorted distinct labels of a dataset of `(image, label)` (one pass over labels)."""
    return class_counts(ds)[0]


def class_balanced(ds, classes_per_batch, samples_per_class, seed=None, shuffle_buffer=1024,
                   classes=None):
    """An endless `(image, label)` stream in class-balanced groups of P x K (see module).

    Args:
      ds: a dataset of `(image, label)` with integer class ids.
      classes_per_batch: P, at most the number of classes in `ds`.
      samples_per_class: K >= 2 (a class needs two samples to form a positive pair).
      seed: fixes the class draws and the per-class shuffles.
      shuffle_buffer: shuffle buffer of each class's pipeline.
      classes: the class ids present (default: read from `ds`).
    """
    import tensorflow as tf

    p = check_int("classes_per_batch", classes_per_batch, 1)
    k = check_int("samples_per_class", samples_per_class, 2)
    check_positive("shuffle_buffer", shuffle_buffer)
    classes = class_ids(ds) if classes is None else np.unique(np.asarray(classes, np.int64))
    if len(classes) < p:
        raise ValueError(
            f"`classes_per_batch` must be at most the {len(classes)} classes of the dataset; "
            f"received classes_per_batch={p}.")
    base = 0 if seed is None else int(seed)
    per_class = [
        ds.filter(lambda x, y, c=int(c): tf.equal(tf.cast(y, tf.int64), c))
        .shuffle(shuffle_buffer, seed=None if seed is None else base + 1 + i,
                 reshuffle_each_iteration=True).repeat().batch(k)  # Groups of K.
        for i, c in enumerate(classes)]

    def draw(step_seed):
        order = tf.argsort(tf.random.stateless_uniform([len(classes)], seed=step_seed))
        return tf.data.Dataset.from_tensor_slices(tf.cast(order[:p], tf.int64))

    steps = tf.data.Dataset.random(seed=seed).batch(2).map(
        lambda s: tf.cast(tf.stack([s[0], s[1]]), tf.int64))
    # One choice per group of K (not per sample): the choosing costs 1 / K as much.
    groups = tf.data.Dataset.choose_from_datasets(per_class, steps.flat_map(draw))
    return groups.unbatch()
