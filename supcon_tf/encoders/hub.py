"""A SavedModel / TF Hub module as an encoder: `encoders.get("hub:PATH_OR_URL")`.

The module's `__call__(images, training)` (TF Hub's reusable SavedModel; this
package's exports follow it) or one of its signatures maps images to the
representation. Its variables become the layer's weights, trainable or frozen as
configured, so the module can be linearly evaluated or trained further. TensorFlow
backend only; TensorFlow is imported when a module is loaded.
"""

import keras

from supcon_tf.registry import register

# A dict output with several keys is read at this key unless `output_key` names another
# (this package's exports return it from `serving_default`); a one-key dict at its key.
DEFAULT_OUTPUT_KEY = "unnormalized_embeddings"


def _load(handle):
    import tensorflow as tf

    try:
        import tensorflow_hub as hub
    except ImportError:  # Local paths still load.
        hub = None
    if hub is None and "://" in handle:
        raise ValueError(f"Loading the URL {handle!r} needs the tensorflow_hub package.")
    if "://" not in handle and not tf.saved_model.contains_saved_model(handle):
        raise ValueError(
            f"`handle` must be a SavedModel directory or a TF Hub URL; received "
            f"handle={handle!r}, which holds no saved_model.pb."
        )
    return hub.load(handle) if hub is not None else tf.saved_model.load(handle)


def _has_training_argument(fn):
    spec = getattr(fn, "function_spec", None)
    argspec = getattr(spec, "fullargspec", None)
    if argspec is None:
        return False
    return "training" in argspec.args or "training" in argspec.kwonlyargs


@register
class HubEncoderLayer(keras.layers.Layer):
    """Images [batch, H, W, C] -> representation [batch, dim] through a loaded module.

    Args:
      handle: a SavedModel directory or a TF Hub URL.
      signature: call this signature instead of the module's `__call__` (signatures
        run in inference mode and can be trained only through their variables).
      output_key: the key to read when the module returns a dict (default: its only
        key, else "unnormalized_embeddings").
    """

    def __init__(self, handle, signature=None, output_key=None, trainable=False, **kwargs):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "Hub encoders need Keras' TensorFlow backend; received backend "
                f"{keras.backend.backend()!r}."
            )
        # The module fixes its own dtypes: no mixed-precision autocasting of its inputs.
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=trainable, **kwargs)
        self.handle = str(handle)
        self.signature = signature
        self.output_key = output_key
        self._module = _load(self.handle)
        signatures = getattr(self._module, "signatures", {})
        if signature is not None:
            if signature not in signatures:
                raise ValueError(
                    f"The module {self.handle!r} has no signature {signature!r}; it has: "
                    f"{', '.join(repr(s) for s in sorted(signatures)) or 'none'}."
                )
            self._fn = signatures[signature]
            self._input_name = list(self._fn.structured_input_signature[1])[0]
            self._training_arg = False
        elif callable(self._module) and hasattr(self._module, "__call__"):
            self._fn = self._module.__call__
            self._input_name = None
            self._training_arg = _has_training_argument(self._fn)
        else:
            raise ValueError(
                f"The module {self.handle!r} is not callable (no `__call__`); pass "
                f"`signature`, one of: {', '.join(repr(s) for s in sorted(signatures)) or 'none'}."
            )
        self._key = self._check_output_key()
        self._wrap_variables()

    def _check_output_key(self):
        """The key to read from the module's dict output (None for a tensor output)."""
        concrete = getattr(self._fn, "concrete_functions", None) or [self._fn]
        outputs = getattr(concrete[0], "structured_outputs", None)
        if not isinstance(outputs, dict):
            if self.output_key is not None:
                raise ValueError(
                    f"The module {self.handle!r} returns a single tensor; `output_key` must "
                    f"be None; received output_key={self.output_key!r}."
                )
            return None
        key = self.output_key
        if key is None:
            key = next(iter(outputs)) if len(outputs) == 1 else DEFAULT_OUTPUT_KEY
        if key not in outputs:
            raise ValueError(
                f"The module {self.handle!r} returns a dict; `output_key` must be one of "
                f"{', '.join(repr(k) for k in sorted(outputs))}; received output_key={key!r}."
            )
        return key

    def _wrap_variables(self):
        """The module's tf.Variables as Keras weights (the same variables, not copies)."""
        module = self._module
        if self.signature is None and hasattr(module, "variables"):
            variables = list(module.variables)
            trainable_ids = {id(v) for v in getattr(module, "trainable_variables", ())}
        else:
            variables = list(self._fn.variables)
            trainable_ids = {id(v) for v in self._fn.trainable_variables}
        for v in variables:
            wrapped = keras.Variable(
                initializer=v, trainable=id(v) in trainable_ids, dtype=v.dtype,
                shape=v.shape, name=v.name.split(":")[0].replace("/", "_"),
            )
            self._track_variable(wrapped)

    def call(self, images, training=False):
        training = bool(training) and self.trainable
        images = keras.ops.cast(images, "float32")
        if self._input_name is not None:
            out = self._fn(**{self._input_name: images})
        elif self._training_arg:
            out = self._fn(images, training=training)
        else:
            out = self._fn(images)
        return out[self._key] if self._key is not None else out

    def get_config(self):
        config = super().get_config()
        config.update(handle=self.handle, signature=self.signature,
                      output_key=self.output_key)
        return config

    @classmethod
    def from_config(cls, config):
        from keras.src.saving import serialization_lib  # As keras.layers.TFSMLayer does.

        if serialization_lib.in_safe_mode() is not False:
            raise ValueError(
                "Deserializing a HubEncoderLayer loads an external SavedModel, whose graph "
                "runs as code; it is disallowed in safe mode. If you trust the module, load "
                "with safe_mode=False."
            )
        return cls(**config)


def hub_encoder(handle, trainable=False, input_shape=None, signature=None, output_key=None,
                name=None):
    """A Keras model images -> representation around a SavedModel / TF Hub module.

    `input_shape` (H, W, C) defaults to the image shape of the module's
    `serving_default` signature (this package's exports have one); modules that take
    any image size need it given.
    """
    layer = HubEncoderLayer(handle, signature=signature, output_key=output_key,
                            trainable=trainable, name="hub_module")
    spec = _image_spec(layer._module)
    if input_shape is None:
        if spec is None or None in spec[1:]:
            raise ValueError(
                f"`input_shape` is required: the module {handle!r} does not fix its image "
                "shape."
            )
        input_shape = spec[1:]
    input_shape = tuple(int(d) for d in input_shape)
    if spec is not None and any(s is not None and s != d for s, d in zip(spec[1:], input_shape)):
        raise ValueError(
            f"`input_shape` must match the module's image shape {tuple(spec[1:])}; received "
            f"input_shape={input_shape}."
        )
    inputs = keras.Input(shape=input_shape, name="images")
    return keras.Model(inputs, layer(inputs), name=name or "hub_encoder")


def _image_spec(module):
    """The image shape of the module's `serving_default` signature, if it has one."""
    sig = getattr(module, "signatures", {}).get("serving_default")
    if sig is None:
        return None
    specs = list(sig.structured_input_signature[1].values())
    if len(specs) != 1 or specs[0].shape.rank != 4:
        return None
    return tuple(specs[0].shape.as_list())
