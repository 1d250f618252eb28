"""Keras-native `.keras` files of the full models, with every package class registered."""

import os

import keras


def _register_all():
    """Imports every module of the package, so that each serializable class is registered."""
    import importlib
    import pkgutil

    import supcon_tf

    for info in pkgutil.walk_packages(supcon_tf.__path__, "supcon_tf."):
        if info.name.rsplit(".", 1)[-1] in ("main", "__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # An optional edge (e.g. TF-only) that cannot load here.
            pass


def save_keras(path, model, overwrite=False):
    """Saves a full model (method, classifier, encoder) as a Keras-native `.keras` file."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"`path` must end in '.keras'; received path={path!r}.")
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model; received {type(model).__name__}.")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"`path` {path!r} already exists; pass overwrite=True to replace it.")
    model.save(path, overwrite=True)
    return path


def load_keras(path, compile=True, safe_mode=True):
    """Loads a `.keras` file written by `save_keras`, with every package class registered.

    `safe_mode=False` is needed for models whose encoder is a Hub module
    (`encoders.get("hub:...")`): loading it runs that SavedModel's graph.
    """
    path = os.fspath(path)
    if not (path.endswith(".keras") and os.path.isfile(path)):
        raise ValueError(f"`path` must be an existing '.keras' file; received path={path!r}.")
    _register_all()
    return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
