"""Argument checks shared by every module: one message style, naming the argument."""


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; "
            f"received {name}={value!r}."
        )
    return value


def check_positive(name, value, allow_zero=False):
    """Raises ValueError unless `value` > 0 (or >= 0 with `allow_zero`)."""
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be {bound}; received {name}={value!r}.")
    return value


def check_probability(name, value):
    """Raises ValueError unless 0 <= value <= 1."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]; received {name}={value!r}.")
    return value
