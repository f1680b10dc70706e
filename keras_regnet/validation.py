"""Argument checks shared by every module: one rule each, one message shape (no TensorFlow).

A value of the wrong type raises `ArgumentTypeError`, which is both a
`TypeError` and a `ValueError` (as numpy's `AxisError` is both a `ValueError`
and an `IndexError`), so a caller catching either keeps working; a value out
of range raises `ValueError`. Every message names the argument and what is
allowed, e.g. ``epochs must be an int >= 1, got 0``.
"""

import math
import numbers


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (also caught by ``except ValueError``)."""


def is_int(value, *, integral_floats=False):
    """An integer (numpy's too, never a bool); with `integral_floats`, also 3.0."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return integral_floats and isinstance(value, float) and value.is_integer()


def is_number(value):
    """A real number (numpy's too, never a bool)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def _allowed(minimum, maximum, min_open, max_open):
    if minimum is not None and maximum is not None:
        return f"in {'(' if min_open else '['}{minimum}, {maximum}{')' if max_open else ']'}"
    if minimum is not None:
        return f"{'>' if min_open else '>='} {minimum}"
    if maximum is not None:
        return f"{'<' if max_open else '<='} {maximum}"
    return ""


def _outside(value, minimum, maximum, min_open, max_open):
    if minimum is not None and (value <= minimum if min_open else value < minimum):
        return True
    return maximum is not None and (value >= maximum if max_open else value > maximum)


def _message(name, kind, value, minimum, maximum, min_open=False, max_open=False):
    allowed = f"{kind} {_allowed(minimum, maximum, min_open, max_open)}".rstrip()
    return f"{name} must be {allowed}, got {value!r}"


def check_int(name, value, minimum=None, maximum=None, *, integral_floats=False):
    """`value` as an int within [minimum, maximum] (None: unbounded)."""
    if not is_int(value, integral_floats=integral_floats):
        raise ArgumentTypeError(_message(name, "an int", value, minimum, maximum))
    if _outside(value, minimum, maximum, False, False):
        raise ValueError(_message(name, "an int", value, minimum, maximum))
    return int(value)


def check_number(name, value, minimum=None, maximum=None, *, min_open=False, max_open=False):
    """`value` as a finite float within the bounds (open or closed at each end)."""
    if not is_number(value):
        raise ArgumentTypeError(_message(name, "a finite number", value, minimum, maximum, min_open, max_open))
    if not math.isfinite(value) or _outside(value, minimum, maximum, min_open, max_open):
        raise ValueError(_message(name, "a finite number", value, minimum, maximum, min_open, max_open))
    return float(value)


def check_choice(name, value, choices):
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_bool(name, value):
    """`value` if it is True or False."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_input_shape(name, value, *, allow_none=False, min_side=1, integral_floats=False):
    """`value` as a ``(height, width, channels)`` tuple of ints.

    Channels must be >= 1 and each side >= `min_side` (the network's total
    downsampling), or None where `allow_none` (a model that takes any size).
    """
    if (
        type(value) is tuple
        and len(value) == 3
        and all(type(v) is int for v in value)
        and value[0] >= min_side
        and value[1] >= min_side
        and value[2] >= 1
    ):
        return value  # the common case, fast: complexity.count runs it per sampled network
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ArgumentTypeError(f"{name} must be (height, width, channels), got {value!r}")
    *sides, channels = value
    check_int(f"{name} channels", channels, 1, integral_floats=integral_floats)
    for side in sides:
        if side is None and allow_none:
            continue
        if not is_int(side, integral_floats=integral_floats) or side < min_side:
            allowed = f"{'None or ' if allow_none else ''}ints >= {min_side}"
            why = f" (the network downsamples by {min_side})" if min_side > 1 else ""
            raise ValueError(f"{name} height and width must be {allowed}{why}, got {value!r}")
    return tuple(None if v is None else int(v) for v in value)
