"""A directory of images in class sub-folders -> (uint8 image, int64 label) dataset.

Layouts: `root/<class>/<image>` (one split, "train") or `root/<split>/<class>/<image>`.
Every file is opened once with Pillow before the pipeline is built, so corrupt
files and mixed channel counts are found here, with their paths, and never crash
a `tf.data` worker later: `corrupt="error"` stops on the first one, `"skip"` drops
them and logs how many and which.
"""

import collections
import concurrent.futures
import logging
import os

from supcon_tf.data.convert import convert
from supcon_tf.data.errors import DataError
from supcon_tf.data.info import DatasetInfo
from supcon_tf.views.base import check_size
from supcon_tf.validation import check_choice

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLIT_NAMES = ("train", "test", "val", "validation")
MODE_CHANNELS = {"1": 1, "L": 1, "LA": 1, "I": 1, "I;16": 1, "F": 1, "P": 3, "RGB": 3,
                 "RGBA": 3, "CMYK": 3, "YCbCr": 3}
log = logging.getLogger("supcon_tf.data")


def _subdirs(path):
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _images_in(path):
    return sorted(os.path.join(path, e.name) for e in os.scandir(path)
                  if e.is_file() and e.name.lower().endswith(EXTENSIONS))


def _split_dirs(root):
    """{split: directory} for the layout found under `root`."""
    if not os.path.isdir(root):
        raise ValueError(f"Image folder `path`={root!r} does not exist or is not a directory.")
    subdirs = _subdirs(root)
    if not subdirs:
        raise ValueError(f"Image folder {root!r} has no class sub-folders; expected "
                         f"{root}/<class>/<image> or {root}/<split>/<class>/<image>.")
    splits = {s: os.path.join(root, s) for s in subdirs
              if s in SPLIT_NAMES and _subdirs(os.path.join(root, s))}
    return splits if splits else {"train": root}


def _inspect(path):
    """(channels, (h, w)) of an image file, or the exception that opening it raised."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return MODE_CHANNELS.get(img.mode, 3), (img.height, img.width)
    except Exception as e:  # Pillow raises many types for bad files.
        return e


def scan_folder(path, split="train", corrupt="error", to_rgb=False):
    """(files, labels, class_names, channels, sizes, split_sizes, skipped) for `split` of
    `path`; `sizes` counts the images of each (h, w), `skipped` lists corrupt files."""
    check_choice("corrupt", corrupt, ("error", "skip"))
    splits = _split_dirs(path)
    if split not in splits:
        found = sorted(splits)
        raise DataError(f"Image folder {path!r} has no split {split!r}; found splits: "
                        f"{', '.join(found)}.",
                        fixes=[("split", found[0], "to use a split it has")])
    class_names = sorted({c for d in splits.values() for c in _subdirs(d)})
    split_sizes = {s: sum(len(_images_in(os.path.join(d, c))) for c in _subdirs(d))
                   for s, d in splits.items()}
    directory = splits[split]
    files, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(directory, name)
        found = _images_in(class_dir) if os.path.isdir(class_dir) else []
        if not found:
            log.warning("Class folder %s holds no images (%s).", class_dir, ", ".join(EXTENSIONS))
        files += found
        labels += [label] * len(found)
    if not files:
        raise ValueError(f"No images ({', '.join(EXTENSIONS)}) in the class sub-folders of "
                         f"{directory!r} (classes: {', '.join(class_names)}).")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(_inspect, files))
    bad = [(f, r) for f, r in zip(files, results) if isinstance(r, Exception)]
    if bad and corrupt == "error":
        f, err = bad[0]
        raise DataError(f"Corrupt image file {f!r} ({type(err).__name__}: {err}); "
                        f"{len(bad)} corrupt file(s) in {directory!r}.",
                        fixes=[("corrupt", "skip", "to drop them (their count is logged)")])
    if bad:
        log.warning("Skipping %d corrupt image file(s) in %s, first: %s", len(bad), directory,
                    ", ".join(f for f, _ in bad[:5]))
    keep = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    if not keep:
        raise ValueError(f"Every image file in {directory!r} is corrupt ({len(bad)} files).")
    files = [files[i] for i in keep]
    labels = [labels[i] for i in keep]
    split_sizes[split] = len(files)  # The readable ones.
    channels = {results[i][0] for i in keep}
    sizes = collections.Counter(results[i][1] for i in keep)
    if len(channels) > 1 and not to_rgb:
        examples = {c: next(f for f, i in zip(files, keep) if results[i][0] == c) for c in channels}
        raise DataError(
            f"Images in {directory!r} have mixed channel counts: "
            + "; ".join(f"{c} channel(s), e.g. {examples[c]!r}" for c in sorted(channels)) + ".",
            fixes=[("to_rgb", True, "to convert grayscale images to RGB")])
    channels = 3 if to_rgb else channels.pop()
    skipped = tuple(f for f, _ in bad)
    return files, labels, class_names, channels, dict(sizes), split_sizes, skipped


def from_folder(path, split="train", image_size=None, corrupt="error", to_rgb=False,
                name=None):
    """(dataset, info) of uint8 [H, W, C] images and int64 labels (sorted class names).

    `image_size=(H, W)` resizes every image (bilinear); without it, images keep their
    sizes and `info.image_shape` has None where they differ.
    """
    import tensorflow as tf

    if image_size is not None:
        check_size("image_size", image_size)
    files, labels, class_names, channels, sizes, split_sizes, skipped = scan_folder(
        path, split, corrupt, to_rgb)
    shape = (*next(iter(sizes)), channels) if len(sizes) == 1 else (None, None, channels)

    def decode(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels,
                                   expand_animations=False)
        image.set_shape(shape)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(labels, tf.int64)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if corrupt == "skip":  # Anything Pillow read but TensorFlow cannot: dropped, logged.
        ds = ds.ignore_errors(log_warning=True)
    info = DatasetInfo(name=name or f"folder:{os.path.abspath(path)}",
                       num_classes=len(class_names), image_shape=shape,
                       split_sizes=split_sizes, class_names=class_names,
                       image_sizes=sizes, skipped=skipped)
    return convert(ds, info, image_size=image_size)
