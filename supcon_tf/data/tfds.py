"""Any TFDS image-classification dataset by name -> (uint8 image, int64 label) dataset.

Uses the prepared copy under `data_dir` (TFDS' default when None); `download=True`
prepares it first where the machine can reach the data. An unknown name raises
a ValueError with close matches from TFDS' own list of builders; a dataset not
prepared under `data_dir` raises a `DataError` naming the folder searched and the
fixes, when the dataset is opened (before training, on every worker of a cluster).

`label_key` picks the class of a dataset that is not image-classification, as a path
through its features: "objects/label" in coco_captions is the COCO class of each image's
largest box (the first object where the objects have no `bbox`); an image without objects
has none and is left out (the split is counted once, images not decoded).
"""

import difflib

from supcon_tf.data.convert import convert
from supcon_tf.data.errors import DataError, Text
from supcon_tf.data.info import DatasetInfo


def get_builder(name, data_dir):
    """The TFDS builder of `name` (its prepared copy in `data_dir`); ValueError with close
    matches for an unknown name."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(name.split(":")[0].split("/")[0], known, n=5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        searched = f" and no prepared copy in data_dir {data_dir!r}" if data_dir else ""
        raise ValueError(f"Unknown TFDS dataset `name`={name!r}{searched}.{hint} "
                         f"See tfds.list_builders() for all {len(known)} names.") from e


def _walk(node, key, lookup):
    """What `key` ("a/b/c") names inside `node`, one `lookup(node, part)` per level; a
    key holding a slash itself ("image/filename") is matched whole first. None if none."""
    parts = key.split("/")
    while parts and node is not None:
        cuts = [c for c in range(len(parts), 0, -1)
                if lookup(node, "/".join(parts[:c])) is not None]
        cut = cuts[0] if cuts else len(parts)
        node, parts = lookup(node, "/".join(parts[:cut])), parts[cut:]
    return node


def feature_at(builder, key, name="label_key"):
    """(feature, in_sequence) that `key` names in the builder's features; ValueError
    naming `name` and the keys there are."""
    import tensorflow_datasets as tfds

    state = {"in_sequence": False}

    def lookup(node, part):
        if isinstance(node, tfds.features.Sequence):
            node, state["in_sequence"] = node.feature, True
        if isinstance(node, tfds.features.FeaturesDict) and part in node.keys():
            return node[part]
        return None

    feature = _walk(builder.info.features, key, lookup) if isinstance(key, str) else None
    if feature is None:
        keys = sorted(_leaf_keys(builder.info.features))
        raise ValueError(f"`{name}`={key!r} names no feature of TFDS dataset "
                         f"{builder.info.name!r}; its features: {', '.join(keys)}.")
    if isinstance(feature, tfds.features.Sequence):
        feature, state["in_sequence"] = feature.feature, True
    return feature, state["in_sequence"]


def _leaf_keys(features, prefix=""):
    import tensorflow_datasets as tfds

    if isinstance(features, tfds.features.Sequence):
        features = features.feature
    if not isinstance(features, tfds.features.FeaturesDict):
        return [prefix[:-1]]
    return [k for key, f in features.items() for k in _leaf_keys(f, f"{prefix}{key}/")]


def value_at(example, key):
    """The tensor `key` names in a decoded example (nested dicts, as `feature_at`)."""
    return _walk(example, key, lambda node, part: node.get(part)
                 if isinstance(node, dict) else None)


def label_reader(builder, label_key):
    """(fn(example) -> int64 label, -1 for none; the ClassLabel feature; whether some
    images may have none) of `label_key`, a ClassLabel feature or one inside a Sequence
    (the label of the largest `bbox` beside it, else the first)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    label, in_sequence = feature_at(builder, label_key)
    if not isinstance(label, tfds.features.ClassLabel):
        raise ValueError(f"`label_key`={label_key!r} of TFDS dataset {builder.info.name!r} "
                         f"must name a ClassLabel feature; it is {type(label).__name__}.")
    if not in_sequence:
        return (lambda ex: tf.cast(value_at(ex, label_key), tf.int64)), label, False
    parent = label_key.rsplit("/", 1)[0] if "/" in label_key else None

    def read(ex):
        labels = tf.reshape(tf.cast(value_at(ex, label_key), tf.int64), [-1])
        boxes = value_at(ex, f"{parent}/bbox") if parent else None
        first = tf.constant(0, tf.int64)
        if boxes is not None:
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            first = tf.cond(tf.size(area) > 0, lambda: tf.argmax(area), lambda: first)
        return tf.concat([labels[first:first + 1], [-1]], 0)[0]

    return read, label, True


def _feature_keys(builder):
    """(image key, label key) of an image-classification dataset."""
    supervised = builder.info.supervised_keys
    if supervised and len(supervised) == 2 and all(isinstance(k, str) for k in supervised):
        return supervised
    features = builder.info.features
    if "image" in features and "label" in features:
        return "image", "label"
    raise ValueError(f"TFDS dataset {builder.info.name!r} is not an image-classification "
                     f"dataset (features: {', '.join(features.keys())}). Pass `label_key` "
                     "naming the ClassLabel feature that gives each image its class (e.g. "
                     "'objects/label').")


def not_prepared_error(builder):
    """The `DataError` for a dataset not prepared in `builder`'s data_dir: the folder
    searched and the fixes."""
    name = builder.info.name
    return DataError(
        f"TFDS dataset {name!r} (version {builder.version}) is not prepared in data_dir "
        f"{str(builder.data_dir_root)!r} (searched {str(builder.data_path)!r}).",
        fixes=[("download", True, "to download and prepare it there (needs network "
                "access, and for some datasets files fetched by hand)"),
               ("data_dir", Text("DIR"), "to use a folder that holds a prepared copy")],
        notes=f"Or prepare it once with `tfds build {name} --data_dir=DIR`.")


def open_split(builder, split, **kwargs):
    """`builder.as_dataset(split, **kwargs)` of dicts; `not_prepared_error` when the
    data is not in the builder's data_dir."""
    try:
        return builder.as_dataset(split=split, as_supervised=False, **kwargs)
    except AssertionError as e:  # TFDS' "could not find data in <data_dir>".
        if builder.data_path.exists():
            raise
        raise not_prepared_error(builder) from e


def skip_images(builder, image_key="image"):
    """`as_dataset` decoders that leave `image_key` encoded (a string): for passes that
    read the other features only, or that decode after a shuffle."""
    import tensorflow_datasets as tfds

    return {image_key: tfds.decode.SkipDecoding()}


def split_size(builder, split):
    """Examples of `split`, any TFDS split string ("train+restval", "train[:10%]")."""
    return builder.info.splits[split].num_examples


def from_tfds(name, split="train", data_dir=None, download=False, shuffle_files=False,
              image_size=None, to_rgb=False, label_key=None):
    """(dataset, info) for TFDS dataset `name` and `split` (any TFDS split string);
    `image_size` and `to_rgb` as in `data.convert`; `label_key` as in the module
    docstring."""
    import tensorflow as tf

    builder = get_builder(name, data_dir)
    if download:
        builder.download_and_prepare()
    features = builder.info.features
    if label_key is None:
        image_key, label_key = _feature_keys(builder)
        label = features[label_key]
        if getattr(label, "num_classes", None) is None:
            raise ValueError(f"TFDS dataset {name!r}: feature {label_key!r} is not a "
                             "ClassLabel.")
        read_label, some_unlabelled = (lambda ex: ex[label_key]), False
    else:
        image_key = "image"
        if image_key not in features:
            raise ValueError(f"TFDS dataset {name!r} has no 'image' feature (features: "
                             f"{', '.join(features.keys())}).")
        read_label, label, some_unlabelled = label_reader(builder, label_key)
    ds = open_split(builder, split, shuffle_files=shuffle_files)
    sizes = {k: v.num_examples for k, v in builder.info.splits.items()}
    if sizes and split not in sizes:  # A split string: "train+restval", "train[:10%]".
        sizes[split] = split_size(builder, split)
    if some_unlabelled:  # Images without a label are left out: count those with one.
        sizes[split] = int(open_split(builder, split, decoders=skip_images(builder)).map(
            read_label).filter(lambda y: y >= 0).reduce(0, lambda n, _: n + 1))
        ds = ds.map(lambda ex: (ex[image_key], read_label(ex))).filter(lambda x, y: y >= 0)
    else:
        ds = ds.map(lambda ex: (ex[image_key], tf.cast(read_label(ex), tf.int64)))
    info = DatasetInfo(
        name=builder.info.name, num_classes=label.num_classes,
        image_shape=tuple(features[image_key].shape), split_sizes=sizes,
        class_names=list(label.names),
    )
    return convert(ds, info, image_size=image_size, to_rgb=to_rgb)
