"""Datasets of (image, label) -> training batches of views, and evaluation batches.

`make_pretrain_dataset` augments either on the host (`tf.data` parallel map, the
batch arrives as views) or on the device (the batch arrives as uint8 images and
the method's `augmenter=views.MultiView(aug, num_views)` draws the views inside
the compiled step). Under `tf.distribute`, pass the `input_context` that
`strategy.distribute_datasets_from_function` gives: the global `batch_size` is
split per replica and the input is sharded per pipeline.
"""

from supcon_tf.data.convert import resize_uint8
from supcon_tf.validation import check_choice, check_positive
from supcon_tf.views.base import check_size
from supcon_tf.views.multicrop import MultiCrop
from supcon_tf.views.multiview import MultiView


def _check_int(name, value, minimum):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {name}={value!r}.")
    return value


def _per_replica(ds, batch_size, input_context):
    if input_context is None:
        return ds, batch_size
    ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return ds, input_context.get_per_replica_batch_size(batch_size)


def _options(deterministic):
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    return options


def _static_images(ds):
    return ds.element_spec[0].shape.is_fully_defined()


def with_sample_index(ds):
    """(x, {"labels": int32, "index": int32}) from a dataset of (x, label): each sample's
    position in `ds`, the same in every epoch, shuffle and resumed run (a memory bank's
    row, e.g. InstDisc's)."""
    import tensorflow as tf

    return ds.enumerate().map(lambda i, xy: (xy[0], {"labels": tf.cast(xy[1], tf.int32),
                                                     "index": tf.cast(i, tf.int32)}))


def _cast_labels(y):
    import tensorflow as tf

    if isinstance(y, dict):
        return dict(y, labels=tf.cast(y["labels"], tf.int32))
    return tf.cast(y, tf.int32)


def make_pretrain_dataset(ds, batch_size, num_views=2, augmenter=None, augment_on="host",
                          shuffle_buffer=10_000, seed=None, repeat=True, drop_remainder=True,
                          deterministic=False, resize=None, input_context=None, cache=False,
                          sample_index=False):
    """Batches for `fit` from a dataset of (uint8 image [H, W, C], int label).

    host:   (views float32 [b, num_views, h, w, C] in [0, 1], labels int32 [b]).
    device: (images uint8 [b, H, W, C], labels int32 [b]); build the method with
            `augmenter=views.MultiView(augmenter, num_views)` (`augmenter` and
            `num_views` here are then unused).
    `resize=(H, W)` resizes images first (needed on device when sizes vary).
    `deterministic=True` with a `seed` gives the same batches every run (the host
    augmentation then runs on one thread, with the augmenter's own seed).
    `sample_index=True`: the labels become {"labels": [b], "index": [b]}, the index
    being each sample's position in `ds` (`with_sample_index`, taken before sharding
    and shuffling).
    An `augmenter` that makes views itself (a `MultiView`, or a `views.MultiCrop`,
    whose batches are ((global, local) view groups, labels)) is used as it is.
    """
    import tensorflow as tf

    check_choice("augment_on", augment_on, ("host", "device"))
    _check_int("num_views", num_views, 1)
    _check_int("batch_size", batch_size, 1)
    check_positive("shuffle_buffer", shuffle_buffer, allow_zero=True)
    if augment_on == "host" and augmenter is None:
        raise ValueError("`augmenter` is required with augment_on='host'; received "
                         "augmenter=None (e.g. views.get('simclr', image_size=(32, 32))).")
    if sample_index:
        ds = with_sample_index(ds)
    ds, batch_size = _per_replica(ds, batch_size, input_context)
    ds = ds.map(lambda x, y: (x, _cast_labels(y)))
    if resize is not None:
        size = check_size("resize", resize)
        ds = ds.map(lambda x, y: (resize_uint8(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    parallel = 1 if deterministic else tf.data.AUTOTUNE
    if augment_on == "device":
        if not _static_images(ds):
            raise ValueError(
                "augment_on='device' needs images of one size to batch them; received image "
                f"shape {ds.element_spec[0].shape}. Pass resize=(H, W).")
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    else:
        multiview = (augmenter if isinstance(augmenter, (MultiView, MultiCrop))
                     else MultiView(augmenter, num_views))
        if _static_images(ds):  # Batch first: the augmenter runs vectorized on the batch.
            ds = ds.batch(batch_size, drop_remainder=drop_remainder)
            ds = ds.map(lambda x, y: (multiview(x, training=True), y),
                        num_parallel_calls=parallel)
        else:  # Sizes vary: augment each image to the target size, then batch.
            ds = ds.map(lambda x, y: (multiview(x, training=True), y),
                        num_parallel_calls=parallel)
            ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options(deterministic))


def make_eval_dataset(ds, batch_size, transform=None, drop_remainder=False, input_context=None,
                      cache=False):
    """(images float32 [b, h, w, C] in [0, 1], labels int32 [b]) in dataset order.

    `transform` (e.g. `views.get("eval", image_size=(224, 224))`) runs with
    training=False; without one, images only become float32 in [0, 1].
    """
    import tensorflow as tf

    _check_int("batch_size", batch_size, 1)
    ds, batch_size = _per_replica(ds, batch_size, input_context)

    def apply(x, y):
        x = transform(x, training=False) if transform is not None else tf.cast(x, tf.float32) / 255.0
        return x, tf.cast(y, tf.int32)

    if cache:
        ds = ds.cache()
    if _static_images(ds):
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        if transform is None:
            raise ValueError("Images of varying sizes need a `transform` to one size "
                             "(e.g. views.get('eval', image_size=(224, 224))); received None.")
        ds = ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)
