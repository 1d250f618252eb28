"""In-memory NumPy arrays -> a `tf.data.Dataset` of (uint8 image, int64 label); also
from a `.npz` file holding them per split (`x_train`, `y_train`, `x_test`, ...)."""

import dataclasses
import os

import numpy as np

from supcon_tf.data.convert import convert
from supcon_tf.data.errors import DataError
from supcon_tf.data.info import DatasetInfo
from supcon_tf.inputs import check_labels


def as_uint8_images(images, name="images"):
    """uint8 [N, H, W, C] from uint8 or float-in-[0, 1] arrays ([N, H, W] gains C = 1)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"`{name}` must have shape [N, H, W] or [N, H, W, C] with C 1 or 3; "
                         f"received shape {images.shape}.")
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {images.shape}); a dataset needs at least "
                         "one image.")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        if not np.all(np.isfinite(images)):
            raise ValueError(f"float `{name}` must be finite; received "
                             f"{int(np.sum(~np.isfinite(images)))} NaN or infinite value(s).")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"float `{name}` must be in [0, 1]; received values in "
                             f"[{images.min()}, {images.max()}].")
        return np.round(images * 255).astype(np.uint8)
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(f"integer `{name}` must be in [0, 255]; received values in "
                             f"[{images.min()}, {images.max()}].")
        return images.astype(np.uint8)
    raise ValueError(f"`{name}` must be uint8, integer or float; received dtype {images.dtype}.")


def from_arrays(images, labels, name="arrays", class_names=None, split="train",
                image_size=None, to_rgb=False):
    """(dataset, info) from images [N, H, W(, C)] (uint8, or float in [0, 1]) and labels [N];
    `image_size` and `to_rgb` as in `data.convert`."""
    import tensorflow as tf

    images = as_uint8_images(images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"`labels` must have shape [N] with N = {len(images)} images; "
                         f"received shape {labels.shape}.")
    check_labels("labels", labels)
    num_classes = len(class_names) if class_names else (int(labels.max()) + 1 if labels.size else 0)
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"`labels` go up to {labels.max()} but class_names has {num_classes}.")
    info = DatasetInfo(name=name, num_classes=num_classes, image_shape=tuple(images.shape[1:]),
                       split_sizes={split: len(images)},
                       class_names=list(class_names) if class_names else
                       [str(i) for i in range(num_classes)])
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    return convert(ds, info, image_size=image_size, to_rgb=to_rgb)


def from_npz(path, split="train", image_size=None, to_rgb=False):
    """(dataset, info) from a NumPy `.npz` file with images `x_<split>` and labels
    `y_<split>` for each split (the layout of Keras' mnist.npz); classes are the label
    ids of every split; `image_size` and `to_rgb` as in `data.convert`."""
    if not os.path.isfile(path):
        raise ValueError(f"NumPy file `path`={path!r} does not exist or is not a file.")
    with np.load(path) as arrays:
        splits = sorted(k[2:] for k in arrays.files
                        if k.startswith("x_") and f"y_{k[2:]}" in arrays.files)
        if not splits:
            raise ValueError(f"NumPy file {path!r} holds no x_<split> / y_<split> pairs of "
                             f"arrays; found: {', '.join(arrays.files) or 'none'}.")
        if split not in splits:
            raise DataError(f"NumPy file {path!r} has no split {split!r}; found splits: "
                            f"{', '.join(splits)}.",
                            fixes=[("split", splits[0], "to use a split it has")])
        labels = {s: np.asarray(arrays[f"y_{s}"]) for s in splits}
        images = arrays[f"x_{split}"]
    num_classes = max(int(y.max()) + 1 if y.size else 0 for y in labels.values())
    ds, info = from_arrays(images, labels[split], name=f"npz:{os.path.abspath(path)}",
                           class_names=[str(i) for i in range(num_classes)], split=split,
                           image_size=image_size, to_rgb=to_rgb)
    return ds, dataclasses.replace(info, split_sizes={s: len(y) for s, y in labels.items()})
