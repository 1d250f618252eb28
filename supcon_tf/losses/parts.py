"""The composable parts of metric learning (distances, miners, reducers) by name or object.

A loss option such as `distance`, `mining` or `reducer` takes a name (what configs
write), a part object, a config dict {"name": ..., **its arguments}, or the dict
`serialize` made of one; `resolve` turns any of
them into the object, and `serialize` keeps a name as the name (so configs that held
"cosine" still hold "cosine") and turns an object into its Keras dict.
"""

import keras

from supcon_tf.validation import check_choice


class Part:
    """Base of the parts: configs through `get_config` / `from_config`, compared by config."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def resolve(value, base, named, name):
    """A `base` instance from an instance, its serialized dict or a key of `named`."""
    if isinstance(value, base):
        return value
    if isinstance(value, dict) and "name" in value:  # A config's {"name": ..., **kwargs}.
        options = dict(value)
        key = check_choice(name, options.pop("name"), tuple(named))
        return named[key](**options)
    if isinstance(value, dict):
        restored = keras.saving.deserialize_keras_object(value)
        if isinstance(restored, base):
            return restored
    check_choice(name, value, tuple(named))
    return named[value]()


def serialize(value):
    """A name stays a name; a part object becomes its Keras serialization dict."""
    if isinstance(value, Part):
        return keras.saving.serialize_keras_object(value)
    return value
