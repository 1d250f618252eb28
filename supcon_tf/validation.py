"""Argument checks shared by every module: one message style, naming the argument.

Each check accepts only the right type (a string or a bool is never a number), so
`temperature="0.1"` or `num_classes="ten"` fails with the parameter's name instead
of Python's bare `could not convert` or a comparison `TypeError`.
"""

import numbers


def _describe(name, value):
    return f"received {name}={value!r} ({type(value).__name__})"


def check_number(name, value):
    """Raises ValueError unless `value` is a real number (not a bool, not a string); returns float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a number; {_describe(name, value)}.")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"`{name}` must be finite; received {name}={value!r}.")
    return float(value)


def check_int(name, value, minimum=None):
    """Raises ValueError unless `value` is an integer (>= `minimum` if given); returns int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            bound = f" >= {minimum}" if minimum is not None else ""
            raise ValueError(f"`{name}` must be an integer{bound}; {_describe(name, value)}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {name}={value!r}.")
    return int(value)


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if not isinstance(value, (str, int, float, type(None))) or value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; "
            f"received {name}={value!r}."
        )
    return value


def check_positive(name, value, allow_zero=False):
    """Raises ValueError unless `value` is a number > 0 (or >= 0 with `allow_zero`)."""
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a number {bound}; {_describe(name, value)}.")
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(f"`{name}` must be {bound}; received {name}={value!r}.")
    return value


def check_probability(name, value):
    """Raises ValueError unless `value` is a number with 0 <= value <= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1]; {_describe(name, value)}.")
    return value
