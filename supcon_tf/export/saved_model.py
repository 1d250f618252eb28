"""Writing: a trained run as a TF Hub reusable SavedModel with named signatures."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

import keras
import numpy as np

from supcon_tf.export.encoded_images import ENCODED_SIGNATURE, decode_images
from supcon_tf.export.formats import FORMATS
from supcon_tf.export.forward import unique_variables, forward
from supcon_tf.export.image_text import IMAGE_TEXT_FOLDER

OUTPUTS = ("unnormalized_embeddings", "embeddings", "projection", "logits", "probabilities")
SIGNATURE_OUTPUTS = {
    "embed": "unnormalized_embeddings",
    "project": "projection",
    "classify": "logits",
}
INPUT_DTYPES = ("float32", "uint8")
CLASS_NAMES_FILE = "class_names.txt"
CONFIG_FILE = "config.json"
# What an export folder holds: the SavedModel, the command line's .keras file, the other
# formats' files, and an image-text method's SavedModel (`image_text/`).
EXPORT_ENTRIES = ("saved_model.pb", "fingerprint.pb", "variables", "assets", "model.keras",
                  *(entry[0] for entry in FORMATS.values() if entry[0]), IMAGE_TEXT_FOLDER)


def _check_image_shape(image_shape):
    shape = tuple(image_shape) if isinstance(image_shape, (list, tuple)) else None
    if (shape is None or len(shape) != 3
            or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape)):
        raise ValueError(
            "`image_shape` must be (height, width, channels) with positive integers; "
            f"received image_shape={image_shape!r}."
        )
    return tuple(int(d) for d in shape)


def _check_built(name, layer):
    if layer is None:
        return
    if not isinstance(layer, keras.layers.Layer):
        raise ValueError(
            f"`{name}` must be a Keras layer or model; received {type(layer).__name__}."
        )
    if not layer.built or not layer.weights:
        raise ValueError(
            f"`{name}` ({layer.name!r}) is not built and has no weights: nothing trained "
            "to export. Restore the run's checkpoint (or train it) before exporting."
        )


def _looks_untrained(encoder):
    """True when every BatchNorm statistic still has its initial value (0 mean, 1 variance)."""
    stats = [(v.path, keras.ops.convert_to_numpy(v)) for v in encoder.non_trainable_variables]
    means = [x for p, x in stats if p.endswith("moving_mean")]
    variances = [x for p, x in stats if p.endswith("moving_variance")]
    if not means:
        return False  # No BatchNorm: nothing tells.
    return all(np.all(m == 0) for m in means) and all(np.all(v == 1) for v in variances)


def _num_classes(classifier_head):
    if hasattr(classifier_head, "num_classes"):
        return int(classifier_head.num_classes)
    if hasattr(classifier_head, "units"):
        return int(classifier_head.units)
    return None


def _jsonable(value):
    """A JSON-ready copy of a config: ConfigDicts and dicts, sequences, scalars; else repr."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


@contextlib.contextmanager
def _export_mode(layers):
    """Every layer trainable and BatchNorm local while tracing; the flags restored after.

    Trainable: a frozen encoder (linear evaluation freezes it) would otherwise run
    BatchNorm in inference mode at `training=True` and report no trainable
    variables. Local BatchNorm: Keras' synchronized BatchNorm all-reduces its
    moments through the replica context, whose custom gradient a SavedModel cannot
    store, so a loaded module would have no gradients. A saved graph cannot
    all-reduce over a strategy it does not know anyway: the export normalizes with
    the moments of the batch it is given, the same values for one replica.
    """
    saved = []
    for layer in layers:
        for sub in layer._flatten_layers(include_self=True, recursive=True):
            bn = isinstance(sub, keras.layers.BatchNormalization)
            saved.append((sub, sub.trainable, bn and sub.synchronized))
    try:
        for sub, _, synchronized in saved:
            sub.trainable = True
            if synchronized:
                sub.synchronized = False
        yield
    finally:
        for sub, trainable, synchronized in reversed(saved):
            sub.trainable = trainable
            if synchronized:
                sub.synchronized = True


def _build_module(encoder, head, classifier_head, preprocessing, image_shape, asset_dir):
    """The trackable object that is saved: functions, variable lists, assets."""
    import tensorflow as tf

    # `variables` are those `__call__` uses (TF Hub's convention); the heads' are kept
    # in `head_variables`, which the signatures use.
    fwd = forward(encoder, head, classifier_head, preprocessing, image_shape)

    def outputs(images, training):
        if images.dtype == tf.uint8:
            x = tf.cast(images, tf.float32) / 255.0
        else:
            x = tf.cast(images, tf.float32)
        return fwd.call(x, training)

    obj = tf.__internal__.tracking.AutoTrackable()
    obj.variables = list(fwd.variables)
    obj.head_variables = list(fwd.head_variables)
    obj.trainable_variables = list(fwd.trainable_variables)
    obj.regularization_losses = list(fwd.regularization_losses)
    specs = [tf.TensorSpec([None, *image_shape], dtype, name="images")
             for dtype in (tf.float32, tf.uint8)]

    obj.__call__ = tf.function(
        lambda images, training=False: outputs(images, training)["unnormalized_embeddings"])
    traced = [obj.__call__.get_concrete_function(spec, training=training)
              for spec in specs for training in (False, True)]

    endpoints = {"serving_default": None}
    if head is not None:
        endpoints["project"] = "projection"
    endpoints["embed"] = "unnormalized_embeddings"
    if classifier_head is not None:
        endpoints["classify"] = "logits"
    signatures = {}
    for name, key in endpoints.items():
        if key is None:
            fn = tf.function(lambda images: outputs(images, False))
        else:
            fn = tf.function(lambda images, key=key: {key: outputs(images, False)[key]})
        setattr(obj, name, fn)
        concrete = [fn.get_concrete_function(spec) for spec in specs]
        traced += concrete
        signatures[name] = concrete[0]
        signatures[f"{name}_uint8"] = concrete[1]
    obj.encoded = tf.function(
        lambda images: outputs(decode_images(images, image_shape), False))
    signatures[ENCODED_SIGNATURE] = obj.encoded.get_concrete_function(
        tf.TensorSpec([None], tf.string, name="images"))
    traced.append(signatures[ENCODED_SIGNATURE])
    # The tf.Variables the traced functions read, tracked as themselves (as Keras'
    # ExportArchive does): tracked only through their Keras wrappers, they are left
    # out of the TF1 restore that TF Serving's loader and the TFLite converter use, so
    # those would find no variables (or freeze uninitialized ones into NaN).
    obj._all_variables = unique_variables(v for f in traced for v in f.variables)
    obj.class_names_file = tf.saved_model.Asset(os.path.join(asset_dir, CLASS_NAMES_FILE))
    obj.config_file = tf.saved_model.Asset(os.path.join(asset_dir, CONFIG_FILE))
    return obj, signatures


def check_replaceable(path):
    """Raises `ValueError` unless `overwrite=True` may replace `path`: it is missing, an
    empty directory, or an export (a saved_model.pb and nothing but an export's
    entries), so that replacing it deletes nothing else."""
    path = pathlib.Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"`path` {str(path)!r} exists and is not a directory.")
    names = sorted(p.name for p in path.iterdir())
    foreign = [n for n in names if n not in EXPORT_ENTRIES]
    if names and (foreign or "saved_model.pb" not in names):
        shown = ", ".join((foreign or names)[:5]) + (" ..." if len(foreign or names) > 5 else "")
        raise ValueError(
            f"`path` {str(path)!r} is not an export (it holds {shown}); overwrite replaces "
            "only an export, so nothing was deleted. Choose another path.")


def export_saved_model(path, *, encoder, head=None, classifier_head=None, image_shape,
                       class_names=None, config=None, overwrite=False, preprocessing=None,
                       allow_untrained=False):
    """Writes a TF Hub reusable SavedModel of a trained run to `path`; returns `path`.

    Args:
      path: the directory to write; it must not exist unless `overwrite=True` (then
        it is replaced only once the new export has been written, and only if it is
        empty or an export: see `check_replaceable`).
      encoder: a built Keras model, float images [batch, H, W, C] -> representation.
      head: the run's `ProjectionHead` (or None: no `projection` / `project`).
      classifier_head: the linear head of a trained `LinearClassifier` (a
        `LinearHead` or `Dense` on the representation), or None.
      image_shape: (H, W, C) of the images the signatures take.
      class_names: names of the classifier's classes, stored as an asset.
      config: the run's config (dict or ConfigDict), stored as JSON.
      preprocessing: an optional Keras layer applied to the float [0, 1] images
        before the encoder (e.g. per-channel normalization the encoder expects).
      allow_untrained: export even when every BatchNorm statistic of the encoder
        is still at its initial value (the sign of a run that never trained).
    """
    if keras.backend.backend() not in ("tensorflow", "jax"):
        raise ValueError(
            "SavedModel export needs Keras' TensorFlow or JAX backend; received backend "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=tensorflow or jax."
        )
    import tensorflow as tf

    image_shape = _check_image_shape(image_shape)
    if encoder is None:
        raise ValueError("`encoder` is required: the trained encoder model to export.")
    for name, layer in (("encoder", encoder), ("head", head),
                        ("classifier_head", classifier_head),
                        ("preprocessing", preprocessing)):
        if name != "preprocessing" or (layer is not None and layer.weights):
            _check_built(name, layer)
    encoder_shape = getattr(encoder, "input_shape", None)
    if isinstance(encoder_shape, tuple) and len(encoder_shape) == 4 and any(encoder_shape[1:]):
        if any(e is not None and e != s for e, s in zip(encoder_shape[1:], image_shape)):
            raise ValueError(
                f"`image_shape` must match the encoder's input shape {encoder_shape[1:]}; "
                f"received image_shape={image_shape}."
            )
    if not allow_untrained and _looks_untrained(encoder):
        raise ValueError(
            f"`encoder` ({encoder.name!r}) looks untrained: every BatchNorm moving "
            "statistic is still at its initial value. Restore the run's checkpoint before "
            "exporting, or pass allow_untrained=True."
        )
    probe = encoder(np.zeros((1, *image_shape), "float32"), training=False)
    if len(probe.shape) != 2:
        raise ValueError(
            "`encoder` must map images to a representation [batch, dim]; received output "
            f"shape {tuple(probe.shape)}."
        )
    num_classes = _num_classes(classifier_head) if classifier_head is not None else None
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if any("\n" in c for c in class_names):
            raise ValueError("`class_names` must not contain newlines.")
        if num_classes is not None and len(class_names) != num_classes:
            raise ValueError(
                f"`class_names` must have one name per class ({num_classes}); received "
                f"{len(class_names)} names."
            )
    elif num_classes is not None:
        class_names = [str(i) for i in range(num_classes)]

    path = pathlib.Path(path)
    if path.exists() and not overwrite:
        raise ValueError(
            f"`path` {str(path)!r} already exists; pass overwrite=True to replace it."
        )
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        asset_dir = os.path.join(tmp, "assets_src")
        os.makedirs(asset_dir)
        with open(os.path.join(asset_dir, CLASS_NAMES_FILE), "w", encoding="utf-8") as f:
            f.write("".join(f"{c}\n" for c in class_names or ()))
        info = {"image_shape": list(image_shape), "input_dtypes": list(INPUT_DTYPES),
                "config": _jsonable(config) if config is not None else None}
        with open(os.path.join(asset_dir, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, sort_keys=True)
        staged = os.path.join(tmp, "saved_model")
        layers = [l for l in (preprocessing, encoder, head, classifier_head) if l is not None]
        with _export_mode(layers):
            obj, signatures = _build_module(encoder, head, classifier_head, preprocessing,
                                            image_shape, asset_dir)
            tf.saved_model.save(obj, staged, signatures=signatures)
        if path.exists():
            shutil.rmtree(path)
        os.replace(staged, path)
    return str(path)
