"""Datasets -> `tf.data` of (image uint8 [H, W, C], label int64) plus `DatasetInfo`, and
the pipelines that turn them into multi-view training batches and evaluation batches, and
class-balanced sampling (`class_balanced`: P classes x K samples per batch) and
class-balanced labelled subsets (`labelled_subset`, for fine-tuning on few labels).

`load(name)`: "digits" (bundled with scikit-learn, offline), any TFDS name ("cifar10",
also "tfds:cifar10"), "folder:/path/to/root", or "npz:/path/data.npz" (NumPy arrays
x_<split>, y_<split>). `OPTIONS` lists the keyword arguments
each kind of source takes (`image_size` and `to_rgb` apply to all of them).
"""

from supcon_tf.data.arrays import from_arrays, from_npz
from supcon_tf.data.balanced import class_balanced
from supcon_tf.data.convert import convert
from supcon_tf.data.digits import load_digits
from supcon_tf.data.errors import DataError
from supcon_tf.data.folder import from_folder
from supcon_tf.data.info import DatasetInfo
from supcon_tf.data.pipelines import make_eval_dataset, make_pretrain_dataset
from supcon_tf.data.subsets import dataset_labels, labelled_subset
from supcon_tf.data.tfds import from_tfds


# The keyword arguments of `load` for each kind of source.
OPTIONS = {"digits": ("image_size", "to_rgb"),
           "folder": ("image_size", "to_rgb", "corrupt"),
           "npz": ("image_size", "to_rgb"),
           "tfds": ("image_size", "to_rgb", "data_dir", "download", "shuffle_files",
                    "label_key")}


def source(name):
    """(kind, what) of a dataset `name`: ("digits", None), ("folder", path), ("npz",
    path) or ("tfds", TFDS name)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be 'digits', a TFDS name, 'folder:/path' or "
                         f"'npz:/path.npz'; received name={name!r}.")
    if name == "digits":
        return "digits", None
    for kind in ("folder", "npz"):
        if name.startswith(kind + ":"):
            return kind, name[len(kind) + 1:]
    return "tfds", name[len("tfds:"):] if name.startswith("tfds:") else name


def load(name, split="train", data_dir=None, **kwargs):
    """(dataset, info) for `name` and `split`; `data_dir` and `kwargs` are the loader's
    `OPTIONS` (`from_folder`'s image_size/corrupt/to_rgb, `from_tfds`'s data_dir/...)."""
    kind, what = source(name)
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    unknown = sorted(set(kwargs) - set(OPTIONS[kind]))
    if unknown:
        raise ValueError(f"The {kind} loader takes {', '.join(OPTIONS[kind])}; received "
                         f"{', '.join(unknown)}.")
    if kind == "digits":
        return load_digits(split, **kwargs)
    if kind == "folder":
        return from_folder(what, split=split, **kwargs)
    if kind == "npz":
        return from_npz(what, split=split, **kwargs)
    return from_tfds(what, split=split, **kwargs)


__all__ = ["DataError", "DatasetInfo", "OPTIONS", "class_balanced", "convert", "from_arrays",
           "dataset_labels", "from_folder", "from_npz", "from_tfds", "labelled_subset", "load",
           "load_digits", "source",
           "make_eval_dataset", "make_pretrain_dataset"]
