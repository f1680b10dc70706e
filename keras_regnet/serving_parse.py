"""Predict request bodies -> numpy arrays, in memory proportional to the body.

`json.loads` would build the whole batch as Python lists first (an image with
one channel costs ~10x its JSON text that way, a list of plain numbers ~40x).
Here the members of "instances" / "inputs" are decoded one instance at a time
and turned into a compact numpy array at once, so only one instance's Python
objects exist at any time; a list of plain numbers is decoded in chunks of
`SCALAR_CHUNK` characters into compact arrays.

Shape errors are raised as soon as they can be known: given the signature's
input shapes (`expectations`), an instance of the wrong rank is refused from
its leading brackets, before it is decoded (a flat list of numbers where
images are expected is refused at its first number), an instance of the wrong
shape right after it is decoded (and an instance too long to be of the
expected shape before it is decoded), and a ragged batch at the first instance
whose shape differs from the first one's.

No TensorFlow here: shapes are plain tuples (None for an unknown dimension).
"""

import json
import math
import re

import numpy as np

SCALAR_CHUNK = 1 << 18  # characters of a flat number list decoded at once
_CHARS_PER_NUMBER = 64  # an instance's text longer than this per expected number is refused


class RequestError(Exception):
    """A client error: answered as `{"error": message}` with `status`."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status = status
        self.headers = headers


def _reject_constant(token):
    raise RequestError(400, f"JSON {token} is not allowed: values must be finite")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WS = re.compile(r"[ \t\n\r]*")
_OPEN = re.compile(r"(?:\[[ \t\n\r]*)*")
_NOT_NUMBER = re.compile(r"[^-+.0-9eE\[\],\s]")  # string, true/false, null, {
_NOT_SCALAR = re.compile(r"[^-+.0-9eE,\s]")
_WHAT = {'"': "strings", "t": "booleans", "f": "booleans", "n": "null", "{": "objects"}


def expectations(signature_inputs):
    """`[{input name: shape or None}, ...]` (one dict per signature; a shape is
    a tuple with None for unknown dimensions, None for an unknown rank) ->
    the `expect` mapping `parse_request` takes: for each key whose list
    elements are instances ("instances", "inputs" and each input name),
    `[(input name, shape), ...]`; `(None, None)` where nothing can be checked."""
    expect = {}
    for inputs in signature_inputs:
        single = len(inputs) == 1
        for name, shape in inputs.items():
            shape = None if shape is None or len(shape) == 0 else tuple(shape)
            expect.setdefault(name, []).append((name, shape))
            for key in ("instances", "inputs"):
                expect.setdefault(key, []).append((name, shape) if single else (None, None))
    return expect


def parse_request(text, expect=None):
    """A predict request body (str) -> dict, tensors as lists of arrays (a
    list of plain numbers as one 1-D array).

    `expect` (from `expectations`) enables the early shape checks. Raises
    `json.JSONDecodeError` (malformed JSON) or `RequestError`.
    """
    pos = _skip(text, 0)
    if pos < len(text) and text[pos] != "{":
        raise RequestError(400, "request body must be a JSON object")
    if pos == len(text):
        raise json.JSONDecodeError("Expecting value", text, pos)
    parser = _Parser(text, expect or {})
    body, pos = parser.object(pos, parser.member)
    if _skip(text, pos) != len(text):
        raise json.JSONDecodeError("Extra data", text, _skip(text, pos))
    return body


def _skip(text, pos):
    return _WS.match(text, pos).end()


def shape_text(shape):
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _compact(array):
    if array.dtype.kind in "iu" and array.size:
        array = array.astype(np.result_type(np.min_scalar_type(array.min()), np.min_scalar_type(array.max())))
    return array


class _Parser:
    def __init__(self, text, expect):
        self.text = text
        self.expect = expect
        self.first = {}  # key -> the first instance's shape (a batch is rectangular)

    def object(self, pos, value):
        """The object at text[pos] ("{"); member values by value(key, pos)."""
        text = self.text
        result = {}
        pos = _skip(text, pos + 1)
        if text.startswith("}", pos):
            return result, pos + 1
        while True:
            if not text.startswith('"', pos):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            if not text.startswith(":", pos):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            result[key], pos = value(key, _skip(text, pos + 1))
            pos = _skip(text, pos)
            if text.startswith("}", pos):
                return result, pos + 1
            if not text.startswith(",", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip(text, pos + 1)

    def member(self, key, pos):
        if key in ("instances", "inputs"):
            return self.batch(key, pos)
        return _DECODER.raw_decode(self.text, pos)

    def batch(self, key, pos):
        """A list -> list of per-instance arrays (or objects of arrays), or
        one 1-D array for a list of numbers; an object -> {name: batch};
        anything else -> one array."""
        text = self.text
        if text.startswith("{", pos):
            return self.object(pos, self.batch)
        if not text.startswith("[", pos):
            return self.leaf(key, pos)
        items = []
        pos = _skip(text, pos + 1)
        if text.startswith("]", pos):
            return items, pos + 1
        index = 0
        while True:
            if text.startswith("{", pos):
                item, pos = self.object(pos, lambda name, at, i=index: self.instance(name, i, at))
            elif not text.startswith("[", pos) and index == 0 and self._allows_scalars(key):
                return self.scalars(key, pos)
            else:
                item, pos = self.instance(key, index, pos)
            items.append(item)
            index += 1
            pos = _skip(text, pos)
            if text.startswith("]", pos):
                return items, pos + 1
            if not text.startswith(",", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip(text, pos + 1)

    def _known(self, key):
        """The (name, shape) pairs to check `key`'s instances against; None: unchecked."""
        candidates = self.expect.get(key)
        if not candidates or any(shape is None for _, shape in candidates):
            return None
        return candidates

    def _allows_scalars(self, key):
        known = self._known(key)
        return known is None or any(len(shape) == 1 for _, shape in known)

    def _rank_error(self, key, index, got, known):
        name, shape = known[0]
        kind = "a number" if got == 0 else f"rank {got}"
        return RequestError(
            400,
            f"input {name!r} must have rank {len(shape)} {shape_text(shape)}: each element of {key!r} is one "
            f"instance of shape {shape_text(shape[1:])} (rank {len(shape) - 1}), but element {index} is {kind}",
        )

    def instance(self, key, index, pos):
        """One instance (a JSON value of numbers) -> the smallest array that holds it."""
        text = self.text
        known = self._known(key)
        depth = _OPEN.match(text, pos).group().count("[")
        first = self.first.get(key)
        if first is not None and depth != len(first):
            raise RequestError(
                400,
                f"{key!r} is not a rectangular array (rows of different lengths): element {index} has rank "
                f"{depth}, element 0 has shape {list(first)}",
            )
        if known is not None and not any(len(shape) - 1 == depth for _, shape in known):
            raise self._rank_error(key, index, depth, known)
        limit = None
        if known is not None and all(None not in shape[1:] for _, shape in known):
            limit = _CHARS_PER_NUMBER * max(math.prod(shape[1:]) for _, shape in known) + 4096
        if limit is not None and len(text) - pos > limit:
            try:
                value, end = _DECODER.raw_decode(text[pos : pos + limit])
            except json.JSONDecodeError as error:
                if error.pos < limit - _CHARS_PER_NUMBER:
                    raise json.JSONDecodeError(error.msg, text, pos + error.pos) from None
                name, shape = known[0]
                raise RequestError(
                    400,
                    f"input {name!r} must have shape {shape_text(shape)}: element {index} of {key!r} does not end "
                    f"within {limit} characters, too long for one instance of shape {shape_text(shape[1:])}",
                ) from None
            end += pos
        else:
            value, end = _DECODER.raw_decode(text, pos)
        array = self._array(key, value, pos, end)
        del value
        if first is not None and array.shape != first:
            raise RequestError(
                400,
                f"{key!r} is not a rectangular array (rows of different lengths): element {index} has shape "
                f"{list(array.shape)}, element 0 has shape {list(first)}",
            )
        if known is not None and not any(
            len(shape) - 1 == array.ndim and all(want in (None, got) for want, got in zip(shape[1:], array.shape))
            for _, shape in known
        ):
            name, shape = known[0]
            raise RequestError(
                400,
                f"input {name!r} must have shape {shape_text(shape)}: element {index} of {key!r} has shape "
                f"{list(array.shape)}, not {shape_text(shape[1:])}",
            )
        if first is None:
            self.first[key] = array.shape
        return array, end

    def leaf(self, key, pos):
        """A whole tensor given as one JSON value (not a list of instances)."""
        value, end = _DECODER.raw_decode(self.text, pos)
        return self._array(key, value, pos, end), end

    def _array(self, key, value, pos, end):
        bad = _NOT_NUMBER.search(self.text, pos, end)
        if bad:
            raise RequestError(400, f"{key!r} must contain only numbers (got {_WHAT.get(bad[0], 'non-numbers')})")
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):
            raise RequestError(400, f"{key!r} is not a rectangular array (rows of different lengths)") from None
        return _compact(array)

    def scalars(self, key, pos):
        """A list of plain numbers, from its first element -> (1-D array, end),
        decoded `SCALAR_CHUNK` characters at a time."""
        text = self.text
        close = text.find("]", pos)
        if close < 0:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, len(text))
        chunks = []
        start = pos
        while start < close:
            cut = close if close - start <= SCALAR_CHUNK else text.rfind(",", start, start + SCALAR_CHUNK)
            if cut <= start:  # one number longer than a chunk
                cut = text.find(",", start + 1, close)
                cut = close if cut < 0 else cut
            bad = _NOT_SCALAR.search(text, start, cut)
            if bad:
                if bad[0] in "[{":
                    raise RequestError(
                        400, f"{key!r} is not a rectangular array (rows of different lengths): numbers mixed with lists"
                    )
                if bad[0] in "NI":
                    raise RequestError(400, "JSON NaN/Infinity is not allowed: values must be finite")
                raise RequestError(400, f"{key!r} must contain only numbers (got {_WHAT.get(bad[0], 'non-numbers')})")
            try:
                values = _DECODER.decode("[" + text[start:cut] + "]")
            except json.JSONDecodeError as error:
                raise json.JSONDecodeError(error.msg, text, start + error.pos - 1) from None
            chunks.append(_compact(np.asarray(values)))
            del values
            start = cut + 1
        return (np.concatenate(chunks) if len(chunks) > 1 else chunks[0]), close + 1


def rows_to_columns(instances, specs):
    """The "instances" of a row request -> {input name: batch}."""
    if isinstance(instances, np.ndarray) and instances.ndim == 1:
        if not len(instances):
            raise RequestError(400, '"instances" is empty: send at least one instance')
        if len(specs) != 1:
            raise RequestError(
                400, f"the signature has several inputs {sorted(specs)}: send each instance as an object naming them"
            )
        return {next(iter(specs)): instances}
    if not isinstance(instances, list):
        raise RequestError(400, '"instances" must be a list')
    if not instances:
        raise RequestError(400, '"instances" is empty: send at least one instance')
    if all(isinstance(row, dict) for row in instances):
        if any(set(row) != set(specs) for row in instances):
            raise RequestError(400, f"each instance must name the inputs {sorted(specs)}")
        return {key: [row[key] for row in instances] for key in specs}
    if len(specs) != 1:
        raise RequestError(
            400, f"the signature has several inputs {sorted(specs)}: send each instance as an object naming them"
        )
    return {next(iter(specs)): instances}


def _has_bool(value):
    """True if a bool hides in nested lists (numpy would read it as 1)."""
    if isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and any(map(_has_bool, value))


def to_array(name, value, shape, dtype):
    """JSON value -> numpy array of `dtype` and `shape` (tuple, None for an
    unknown dimension; None for an unknown rank), or RequestError.

    `value` is what `parse_request` made (a list of per-instance arrays) or
    plain Python lists (the Python API).
    """
    dtype = np.dtype(dtype)
    if _has_bool(value):
        raise RequestError(400, f"input {name!r} must contain only numbers (got booleans)")
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        raise RequestError(400, f"input {name!r} is not a rectangular array (rows of different lengths)") from None
    if array.dtype.kind not in "iuf" or array.dtype == object:
        raise RequestError(
            400,
            f"input {name!r} must contain only numbers (got "
            f"{'strings' if array.dtype.kind in 'US' else 'non-numbers'})",
        )
    if array.ndim and array.shape[0] == 0:
        raise RequestError(400, f"input {name!r} is an empty batch")
    if shape is not None:
        if array.ndim != len(shape):
            raise RequestError(
                400,
                f"input {name!r} must have rank {len(shape)} {shape_text(shape)}, got rank {array.ndim} "
                f"{list(array.shape)}",
            )
        for got, want in zip(array.shape, shape):
            if want is not None and got != want:
                raise RequestError(400, f"input {name!r} must have shape {shape_text(shape)}, got {list(array.shape)}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise RequestError(400, f"input {name!r} contains NaN or infinity")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if array.dtype.kind == "f" and not np.all(array == np.floor(array)):
            raise RequestError(400, f"input {name!r} has dtype {dtype.name}: values must be whole numbers")
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise RequestError(
                400, f"input {name!r} has dtype {dtype.name}: values must be in [{info.min}, {info.max}]"
            )
    cast = array.astype(dtype)
    if cast.dtype.kind == "f" and not np.all(np.isfinite(cast)):
        raise RequestError(400, f"input {name!r} has values out of range for {dtype.name}")
    return cast
