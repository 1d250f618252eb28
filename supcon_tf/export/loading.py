"""Reading: an export (or any SavedModel) with clear errors, and its assets."""

import json
import os

import numpy as np

from supcon_tf.export.saved_model import CLASS_NAMES_FILE, CONFIG_FILE


def _check_images(images, spec, dtypes, where):
    """Raises a ValueError unless `images` have one of `dtypes` and `spec`'s shape."""
    if images.dtype.name not in dtypes:
        wanted = " or ".join({"float32": "float32 in [0, 1]", "string": "string (JPEG or PNG "
                              "bytes)"}.get(d, d) for d in dtypes)
        raise ValueError(
            f"images at {where} must be {wanted}; received dtype {images.dtype.name}."
        )
    shape, want = tuple(images.shape), tuple(spec.shape.as_list())
    if len(shape) != len(want) or any(w is not None and w != s for w, s in zip(want, shape)):
        wanted = ", ".join("batch" if w is None else str(w) for w in want)
        raise ValueError(
            f"images at {where} must have shape [{wanted}]; received shape {list(shape)}."
        )


def load_saved_model(path, signature=None):
    """Loads an export; with `signature`, returns a checked function images -> dict.

    The function takes images of the signature's shape and dtype (float32 in [0, 1],
    uint8, or for `encoded` a list of JPEG/PNG bytes; the float32 signatures of this
    package's exports also take uint8) and raises a ValueError naming what it
    expected otherwise. It keeps the loaded object as `.saved_model`.
    """
    import tensorflow as tf

    path = os.fspath(path)
    if not tf.saved_model.contains_saved_model(path):
        raise ValueError(
            f"`path` {path!r} is not a SavedModel directory (no saved_model.pb in it)."
        )
    obj = tf.saved_model.load(path)
    if signature is None:
        return obj
    if signature not in obj.signatures:
        raise ValueError(
            f"The SavedModel at {path!r} has no signature {signature!r}; it has: "
            f"{', '.join(repr(s) for s in sorted(obj.signatures)) or 'none'}."
        )
    concrete = obj.signatures[signature]
    inputs = concrete.structured_input_signature[1]
    if len(inputs) != 1:
        raise ValueError(
            f"The signature {signature!r} takes inputs {sorted(inputs)}, not one image tensor."
        )
    (input_name, spec), = inputs.items()
    dtypes = [spec.dtype.name]
    polymorphic = getattr(obj, signature, None)  # This package's exports also take uint8.
    if spec.dtype == tf.float32 and callable(polymorphic):
        dtypes.append("uint8")

    def call(images):
        if spec.dtype == tf.string and not tf.is_tensor(images):
            images = tf.convert_to_tensor(list(images), tf.string)  # encoded images
        images = images if tf.is_tensor(images) else np.asarray(images)
        _check_images(images, spec, dtypes, f"signature {signature!r}")
        if images.dtype.name != spec.dtype.name:
            return polymorphic(tf.convert_to_tensor(images))
        return concrete(**{input_name: tf.convert_to_tensor(images)})

    call.signature = signature
    call.saved_model = obj
    return call


def read_class_names(path):
    """The class names stored with an export (empty when it has no classifier)."""
    with open(os.path.join(os.fspath(path), "assets", CLASS_NAMES_FILE), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def read_config(path):
    """The export's JSON asset: {"image_shape", "input_dtypes", "config"}."""
    with open(os.path.join(os.fspath(path), "assets", CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f)
