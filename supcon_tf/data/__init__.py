"""Datasets -> `tf.data` of (image uint8 [H, W, C], label int64) plus `DatasetInfo`, and
the pipelines that turn them into multi-view training batches and evaluation batches, and
class-balanced sampling (`class_balanced`: P classes x K samples per batch).

`load(name)`: "digits" (bundled with scikit-learn, offline), any TFDS name ("cifar10",
also "tfds:cifar10"), or "folder:/path/to/root".
"""

from supcon_tf.data.arrays import from_arrays
from supcon_tf.data.balanced import class_balanced
from supcon_tf.data.digits import load_digits
from supcon_tf.data.folder import from_folder
from supcon_tf.data.info import DatasetInfo
from supcon_tf.data.pipelines import make_eval_dataset, make_pretrain_dataset
from supcon_tf.data.tfds import from_tfds


def load(name, split="train", data_dir=None, **kwargs):
    """(dataset, info) for `name` and `split`; `kwargs` go to the loader
    (`from_folder`'s image_size/corrupt/to_rgb, `from_tfds`'s download/shuffle_files)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be 'digits', a TFDS name or 'folder:/path'; "
                         f"received name={name!r}.")
    if name == "digits":
        if kwargs:
            raise ValueError(f"The digits loader takes no options; received {sorted(kwargs)}.")
        return load_digits(split)
    if name.startswith("folder:"):
        return from_folder(name[len("folder:"):], split=split, **kwargs)
    if name.startswith("tfds:"):
        name = name[len("tfds:"):]
    return from_tfds(name, split=split, data_dir=data_dir, **kwargs)


__all__ = ["DatasetInfo", "class_balanced", "from_arrays",
           "from_folder", "from_tfds", "load", "load_digits",
           "make_eval_dataset", "make_pretrain_dataset"]
