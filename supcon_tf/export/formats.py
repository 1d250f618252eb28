"""Export formats by name: the SavedModel, and ONNX / LiteRT files through Keras' `export`.

`check_formats` runs before training (config validation): an unknown name, a format
whose optional extra is not installed, or one the backend cannot write is refused
then, not after hours of training. `write_formats` writes the files beside the
SavedModel from a Keras model of the serving outputs (`serving_model`).
"""

import importlib.util

import keras

# name: (file written, Python modules it needs, the extra that installs them, backends).
FORMATS = {
    "saved_model": (None, (), None, ("tensorflow", "jax")),
    "onnx": ("model.onnx", ("tf2onnx", "onnx"), "onnx", ("tensorflow",)),
    "litert": ("model.tflite", (), None, ("tensorflow",)),
}
DEFAULT_FORMATS = ("saved_model",)


def check_formats(formats, backend=None, key="export.formats"):
    """Returns `formats` as a tuple; raises ValueError naming `key` for what cannot be written."""
    backend = backend or keras.backend.backend()
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not isinstance(formats, (list, tuple)) or not formats:
        raise ValueError(
            f"`{key}` must be a non-empty list of format names from "
            f"{', '.join(repr(f) for f in FORMATS)}; received {formats!r}.")
    for name in formats:
        if name not in FORMATS:
            raise ValueError(
                f"`{key}` holds an unknown format {name!r}; the formats are "
                f"{', '.join(repr(f) for f in FORMATS)}.")
        _, modules, extra, backends = FORMATS[name]
        if backend not in backends:
            raise ValueError(
                f"`{key}` format {name!r} cannot be written from Keras' {backend!r} "
                f"backend (only from {', '.join(repr(b) for b in backends)}): drop it from "
                f"{key}, or run with KERAS_BACKEND={backends[0]}.")
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"`{key}` format {name!r} needs {', '.join(missing)}, which is not "
                f"installed: pip install \"supcon-tf[{extra}]\" (or drop {name!r}).")
    if len(set(formats)) != len(formats):
        raise ValueError(f"`{key}` names a format twice; received {tuple(formats)!r}.")
    return tuple(formats)


def serving_model(encoder, head=None, classifier_head=None, preprocessing=None, *,
                  image_shape):
    """A Keras model: float32 images in [0, 1] -> the `serving_default` outputs (a dict)."""
    images = keras.Input(shape=tuple(image_shape), dtype="float32", name="images")
    x = preprocessing(images) if preprocessing is not None else images
    rep = keras.ops.cast(encoder(x, training=False), "float32")
    outputs = {"unnormalized_embeddings": rep, "embeddings": keras.ops.normalize(rep, -1)}
    if head is not None:
        proj = keras.ops.cast(head(rep, training=False), "float32")
        outputs["projection"] = keras.ops.normalize(proj, -1)
    if classifier_head is not None:
        logits = keras.ops.cast(classifier_head(rep, training=False), "float32")
        outputs["logits"] = logits
        outputs["probabilities"] = keras.ops.softmax(logits, -1)
    return keras.Model(images, outputs, name="serving")


def write_formats(directory, formats, model, image_shape):
    """Writes every format but the SavedModel into `directory`; returns {format: path}."""
    import os

    written = {}
    spec = keras.InputSpec(shape=(None, *image_shape), dtype="float32", name="images")
    for name in check_formats(formats):
        filename = FORMATS[name][0]
        if filename is None:
            continue
        written[name] = os.path.join(os.fspath(directory), filename)
        model.export(written[name], format=name, input_signature=[spec], verbose=False)
    return written
