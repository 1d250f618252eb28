"""Names to objects, and the one decorator that makes public classes serializable."""

import difflib

import keras

PACKAGE = "supcon_tf"


def register(cls):
    """Registers `cls` with Keras serialization under the package name `supcon_tf`.

    Two classes of one name would share a key, and loading would build the last one
    registered: that is refused.
    """
    key = f"{PACKAGE}>{cls.__name__}"
    held = keras.saving.get_custom_objects().get(key)
    if held is not None and (held.__module__, held.__qualname__) != (cls.__module__,
                                                                     cls.__qualname__):
        raise ValueError(f"{key} is registered twice: by {held.__module__}.{held.__qualname__}"
                         f" and {cls.__module__}.{cls.__qualname__}; rename one.")
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def unknown_name_error(kind, name, valid):
    """A `ValueError` naming the bad value, the closest valid ones and all of them."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown {kind} {name!r}.{hint} Valid {kind} names: {', '.join(valid)}."
    )


class Registry:
    """A small name -> factory table, as Keras' `losses.get()` does for its objects.

    `register("name")` decorates a factory; `get("name", **kwargs)` builds it, and
    an unknown name raises a `ValueError` that lists every valid name.
    """

    def __init__(self, kind):
        self.kind = kind
        self._factories = {}

    def register(self, name):
        def decorator(factory):
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice.")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self):
        return sorted(self._factories)

    def __contains__(self, name):
        return name in self._factories

    def lookup(self, name):
        if name not in self._factories:
            raise unknown_name_error(self.kind, name, self._factories)
        return self._factories[name]

    def get(self, name, **kwargs):
        return self.lookup(name)(**kwargs)
