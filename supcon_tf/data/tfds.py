"""Any TFDS image-classification dataset by name -> (uint8 image, int64 label) dataset.

Uses the prepared copy under `data_dir` (TFDS' default when None); `download=True`
prepares it first where the machine can reach the data. An unknown name raises
a ValueError with close matches from TFDS' own list of builders; a dataset not
prepared under `data_dir` raises a `DataError` naming the folder searched and the
fixes, when the dataset is opened (before training, on every worker of a cluster).
"""

import difflib

from supcon_tf.data.convert import convert
from supcon_tf.data.errors import DataError, Text
from supcon_tf.data.info import DatasetInfo


def _builder(name, data_dir):
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


def from_tfds(name, split="train", data_dir=None, download=False, shuffle_files=False,
              image_size=None, to_rgb=False):
    """(dataset, info) for TFDS dataset `name` and `split` (any TFDS split string);
    `image_size` and `to_rgb` as in `data.convert`."""
    builder = _builder(name, data_dir)
    if download:
        builder.download_and_prepare()
    image_key, label_key = _feature_keys(builder)
    features = builder.info.features
    label = features[label_key]
    num_classes = getattr(label, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"TFDS dataset {name!r}: feature {label_key!r} is not a ClassLabel.")
    try:
        ds = builder.as_dataset(split=split, shuffle_files=shuffle_files, as_supervised=False)
    except AssertionError as e:  # TFDS' "could not find data in <data_dir>".
        if builder.data_path.exists():
            raise
        raise not_prepared_error(builder) from e
    ds = ds.map(lambda ex: (ex[image_key], ex[label_key]))
    info = DatasetInfo(
        name=builder.info.name, num_classes=num_classes,
        image_shape=tuple(features[image_key].shape),
        split_sizes={k: v.num_examples for k, v in builder.info.splits.items()},
        class_names=list(label.names),
    )
    return convert(ds, info, image_size=image_size, to_rgb=to_rgb)
