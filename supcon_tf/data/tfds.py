"""Any TFDS image-classification dataset by name -> (uint8 image, int64 label) dataset.

Uses the prepared copy under `data_dir` (TFDS' default when None); `download=True`
prepares it first where the machine can reach the data. An unknown name raises
a ValueError with close matches from TFDS' own list of builders.
"""

import difflib

from supcon_tf.data.info import DatasetInfo


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(name.split(":")[0].split("/")[0], known, n=5)
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ValueError(f"Unknown TFDS dataset `name`={name!r}.{hint} "
                         f"See tfds.list_builders() for all {len(known)} names.") from e


def _feature_keys(builder):
    """(image key, label key) of an image-classification dataset."""
    supervised = builder.info.supervised_keys
    if supervised and len(supervised) == 2 and all(isinstance(k, str) for k in supervised):
        return supervised
    features = builder.info.features
    if "image" in features and "label" in features:
        return "image", "label"
    raise ValueError(f"TFDS dataset {builder.info.name!r} is not an image-classification "
                     f"dataset (features: {', '.join(features.keys())}).")


def from_tfds(name, split="train", data_dir=None, download=False, shuffle_files=False):
    """(dataset, info) for TFDS dataset `name` and `split` (any TFDS split string)."""
    builder = _builder(name, data_dir)
    if download:
        builder.download_and_prepare()
    image_key, label_key = _feature_keys(builder)
    features = builder.info.features
    label = features[label_key]
    num_classes = getattr(label, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"TFDS dataset {name!r}: feature {label_key!r} is not a ClassLabel.")
    ds = builder.as_dataset(split=split, shuffle_files=shuffle_files, as_supervised=False)
    ds = ds.map(lambda ex: (ex[image_key], ex[label_key]))
    info = DatasetInfo(
        name=builder.info.name, num_classes=num_classes,
        image_shape=tuple(features[image_key].shape),
        split_sizes={k: v.num_examples for k, v in builder.info.splits.items()},
        class_names=list(label.names),
    )
    return ds, info
