"""Design spaces of the paper: AnyNetX_A..E and RegNet (pure Python + numpy).

A design space is a *distribution* of networks. Each space here samples
`AnyNetSpec`s from it, checks membership, counts complexity through
`keras_regnet.complexity.count` and maps external proposals (e.g. from a
KerasTuner oracle) onto the nearest member. No TensorFlow or Keras import.

    >>> import numpy as np
    >>> from keras_regnet import design_spaces
    >>> space = design_spaces.get("AnyNetX_E", flops=(360e6, 440e6))
    >>> spec = space.sample(np.random.default_rng(0))
    >>> space.contains(spec)
    True

The spaces (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020):

* ``AnyNetX_A``: per stage i (4 stages): depth d_i in [1, 16], width w_i in
  [8, 1024] in steps of 8, bottleneck ratio b_i in {1, 2, 4}, group width
  g_i in {1, 2, 4, 8, 16, 32}; all independent.
* ``AnyNetX_B``: A with one bottleneck ratio b shared by all stages.
* ``AnyNetX_C``: B with one group width g shared by all stages too.
* ``AnyNetX_D``: C conditioned on non-decreasing widths, w_{i+1} >= w_i.
* ``AnyNetX_E``: D conditioned on non-decreasing depths, d_{i+1} >= d_i.
* ``RegNet``: the quasi-linear rule `specs.regnet_spec(w_0, w_a, w_m, depth,
  g, b)` with pycls's sweep ranges: depth uniform in [12, 28], w_0
  log-uniform in [8, 256] step 8, w_a log-uniform in [8, 256] step 0.1, w_m
  log-uniform in [2, 3] step 0.001; g and b from the same sets as AnyNetX
  (the paper's RegNet space keeps AnyNetX_E's b and g); a draw that does not
  give exactly ``num_stages`` stages is rejected (pycls's NUM_STAGES check:
  the number of distinct widths and the number of width steps both equal 4).

Sampling conventions (pycls `pycls/sweep/random.py`):

* Depths and widths are log-uniform with a step q, as pycls's
  ``log_uniform(lo, hi, q)``: draw f log-uniformly on (lo - min(q, lo/2), hi]
  and take the smallest multiple of q >= f (ceil). Every multiple of q in
  [lo, hi] can come out, each with probability proportional to the
  log-length of its cell, so the result is log-uniform over [lo, hi].
* Discrete choices (b, g) are uniform over the given set. For the default
  sets, powers of two, this is also log-uniform over the set.
* Every sample goes through the width/group compatibility step
  (`specs.make_compatible`, per stage) so every sample builds. A stage's
  group width may therefore be clamped below the drawn one (g <= width / b).
  All constraints of a space (ranges, steps, monotonicity) are checked on the
  *final* values, after this step.
* Constrained spaces are their parent's distribution *conditioned* on the
  constraint: D is C given w_{i+1} >= w_i, E is D given d_{i+1} >= d_i. This
  is sampled exactly by rejection from the parent's draws. In C the depths
  are independent of the (width, b, g) part, and E's constraint factorizes
  into a width-part and a depth-part condition, so the two parts are drawn by
  rejection in two independent streams and paired in order: exactly E, at the
  cost of ~24 + ~24 draws instead of ~24 x 24. Draws are vectorized with
  numpy in fixed-size batches (unused draws of a batch are discarded), so a
  seeded `numpy.random.Generator` reproduces the same samples.
* An optional complexity window (``flops=(lo, hi)``, ``params=...``,
  ``acts=...``; inclusive bounds, ``hi=None`` for no upper bound) is applied
  by rejection with `complexity.count` at ``input_shape`` and ``classes``:
  the result is the space's distribution conditioned on the window. After
  ``max_tries`` consecutive rejections by the window a ValueError reports the
  window and the range of values seen.

`contains(spec)` checks every constraint of the space: block "x", the stem
width, stride 2 everywhere (stem and stages), no SE, the number of stages,
ranges and steps of depths and widths, choices of b, sharing of b and g,
monotonicity, the complexity window, and that each stage is what the
compatibility step makes of its width with some group width of the set (for
a shared g: one group width for all stages). For RegNet the exact question
("is there a (depth, w_0, w_a, w_m) in range that generates these stages?")
is a search; `contains` uses a necessary check instead: the number of stages,
shared b and g as above, non-decreasing widths, total depth in range, and the
complexity window.
"""

import decimal
import functools
import itertools
import math

import numpy as np

from keras_regnet import complexity
from keras_regnet.specs import AnyNetSpec, StageSpec, make_compatible, quantized_widths_batch, regnet_spec
from keras_regnet.validation import check_input_shape, check_int, check_number, is_int, is_number

__all__ = [
    "DesignSpace",
    "AnyNetX_A",
    "AnyNetX_B",
    "AnyNetX_C",
    "AnyNetX_D",
    "AnyNetX_E",
    "RegNet",
    "SPACES",
    "get",
    "names",
]

_BATCH = 256  # candidates drawn per vectorized batch
_STRUCTURE_FACTOR = 100  # structural rejections allowed per sample: this x max_tries
_TABLE_LIMIT = 100_000  # largest grid of float values kept as a lookup table


# ----------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------


def _check_int(space, name, value, minimum):
    return check_int(f"{space}: {name}", value, minimum, integral_floats=True)


def _is_finite(value, integer):
    """A finite number; with `integer`, an integral one (3.0 counts)."""
    return is_number(value) and math.isfinite(value) and (not integer or is_int(value, integral_floats=True))


def _multiple_of(value, q):
    return decimal.Decimal(repr(value)) % decimal.Decimal(repr(q)) == 0


def _check_range(space, name, value, *, integer, minimum, step=None, strict_minimum=False):
    """A (lo, hi) range with lo <= hi, lo >= minimum, both multiples of step."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{space}: {name} must be a (low, high) pair, got {value!r}")
    lo, hi = value
    for v in (lo, hi):
        if not _is_finite(v, integer):
            kind = "ints" if integer else "finite numbers"
            raise ValueError(f"{space}: {name} must be a (low, high) pair of {kind}, got {value!r}")
    lo, hi = (int(lo), int(hi)) if integer else (float(lo), float(hi))
    if lo > hi:
        raise ValueError(f"{space}: {name} range is empty: low {lo} > high {hi}")
    if lo < minimum or (strict_minimum and lo == minimum):
        bound = f"> {minimum}" if strict_minimum else f">= {minimum}"
        raise ValueError(f"{space}: {name} low must be {bound}, got {lo}")
    if step is not None and not (_multiple_of(lo, step) and _multiple_of(hi, step)):
        raise ValueError(f"{space}: {name} bounds must be multiples of its step {step}, got ({lo}, {hi})")
    return lo, hi


def _check_choices(space, name, value, *, integer):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{space}: {name} must be a non-empty sequence of positive numbers, got {value!r}")
    values = list(value)
    if not values:
        raise ValueError(f"{space}: {name} must not be empty")
    for v in values:
        if not _is_finite(v, integer) or v <= 0:
            kind = "positive ints" if integer else "positive numbers"
            raise ValueError(f"{space}: {name} must hold {kind}, got {v!r}")
    values = [int(v) for v in values] if integer else [float(v) for v in values]
    if len(set(values)) != len(values):
        raise ValueError(f"{space}: {name} has duplicates (they would bias the uniform choice): {values}")
    return tuple(sorted(values))


def _check_window(space, name, value):
    """None, or (lo, hi) with 0 <= lo < hi; hi None or inf for no upper bound."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{space}: {name} window must be (low, high) or None, got {value!r}")
    lo, hi = value
    hi = math.inf if hi is None else hi
    if not is_number(lo) or not is_number(hi) or math.isnan(lo) or math.isnan(hi) or not math.isfinite(lo):
        raise ValueError(f"{space}: {name} window must be two numbers (high may be None), got {value!r}")
    if lo < 0:
        raise ValueError(f"{space}: {name} window low must be >= 0, got {lo}")
    if lo >= hi:
        raise ValueError(f"{space}: {name} window ({lo}, {hi}) is empty: low must be < high")
    lo = int(lo) if is_int(lo, integral_floats=True) else float(lo)
    hi = hi if math.isinf(hi) else (int(hi) if is_int(hi, integral_floats=True) else float(hi))
    return lo, hi


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)), got {type(rng).__name__}"
        )


def _json_number(value):
    if value is None:
        return None
    if isinstance(value, float) and math.isinf(value):
        return None
    return value


# ----------------------------------------------------------------------------
# Sampling helpers
# ----------------------------------------------------------------------------


class _Grid:
    """Multiples of q in [lo, hi], addressed by their integer index k (value k*q)."""

    def __init__(self, lo, hi, q):
        self.lo, self.hi, self.q = lo, hi, q
        self.integer = isinstance(q, int)
        self._dq = decimal.Decimal(repr(q))
        self.k_lo = int(decimal.Decimal(repr(lo)) / self._dq)
        self.k_hi = int(decimal.Decimal(repr(hi)) / self._dq)
        self._log_lo = math.log(lo - min(q, lo / 2))
        self._log_hi = math.log(hi)
        self._table = None
        size = self.k_hi - self.k_lo + 1
        if not self.integer and size <= _TABLE_LIMIT:
            self._table = np.array([self.value(k) for k in range(self.k_lo, self.k_hi + 1)])

    def value(self, k):
        """The value k*q as a plain Python int or float (decimal-exact, like pycls)."""
        if self.integer:
            return int(k) * self.q
        return float(decimal.Decimal(int(k)) * self._dq)

    def values(self, k):
        if self.integer:
            return k * self.q
        if self._table is not None:
            return self._table[k - self.k_lo]
        return np.array([self.value(v) for v in k.ravel()], dtype=float).reshape(k.shape)

    def log_uniform(self, rng, size):
        """Indices k of pycls's log_uniform(lo, hi, q): ceil-quantized log-uniform draws."""
        f = np.exp(rng.uniform(self._log_lo, self._log_hi, size))
        k = np.ceil(f / self.q).astype(np.int64)
        return np.clip(k, self.k_lo, self.k_hi)  # guards float round-off at the ends

    def nearest(self, value):
        """Index of the grid value nearest to `value` (clamped to the range)."""
        k = int(math.floor(value / self.q + 0.5))
        return min(max(k, self.k_lo), self.k_hi)


def _compatible_np(width, group_width, bottleneck_ratio):
    """`specs.make_compatible` vectorized over numpy arrays (same float operations)."""
    bot_mul = 1.0 / bottleneck_ratio
    inner = np.maximum(1, (width * bot_mul).astype(np.int64))
    group_width = np.minimum(group_width, inner)
    integer_mul = (bot_mul > 1) & (np.abs(bot_mul - np.round(bot_mul)) < 1e-9)
    if np.any(integer_mul):
        multiple = np.where(integer_mul, np.lcm(group_width, np.round(bot_mul).astype(np.int64)), group_width)
    else:
        multiple = group_width
    inner = np.maximum(multiple, (np.round(inner / multiple) * multiple).astype(np.int64))
    width = (inner / bot_mul).astype(np.int64)
    return width, group_width


@functools.lru_cache(maxsize=65536)
def _nominal_groups(width, group_width, bottleneck_ratio, choices):
    """Group widths g of `choices` for which make_compatible(width, g, b) == (width, group_width)."""
    out = []
    for g in choices:
        try:
            if make_compatible(width, g, bottleneck_ratio) == (width, group_width):
                out.append(g)
        except (TypeError, ValueError):
            pass
    return frozenset(out)


def _nearest_choice(value, choices):
    """The choice nearest to `value` on a log scale (ties -> the smaller)."""
    value = check_number("value", value)
    if value <= 0:
        return choices[0]
    return min(choices, key=lambda c: (abs(math.log(c) - math.log(value)), c))


def _median_choice(values, choices):
    """Nearest choice to the median (lower median) of the proposed per-stage values."""
    ordered = sorted(values)
    return _nearest_choice(ordered[(len(ordered) - 1) // 2], choices)


def _plain(value):
    """A numpy scalar as the plain Python int/float (JSON-safe)."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------


class DesignSpace:
    """A distribution of AnyNet networks: sample, check, count, project.

    Subclasses define the parameters; common ones are ``num_stages``,
    ``stem_width``, the complexity window ``flops``/``params``/``acts``
    (each None or (low, high), inclusive; high None = unbounded), evaluated at
    ``input_shape`` and ``classes``, and ``max_tries`` (window rejections
    allowed per sample before giving up with a ValueError).
    """

    name = None
    parent = None  # name of the space this one conditions, if any
    _ARGUMENTS = ()  # constructor parameter names, in order

    def _init_common(self, num_stages, stem_width, flops, params, acts, input_shape, classes, max_tries):
        n = self.name
        self.num_stages = _check_int(n, "num_stages", num_stages, 1)
        self.stem_width = _check_int(n, "stem_width", stem_width, 1)
        # Complexity windows: (lo, hi) of flops, parameter count and activations, or None.
        self.flops_window = _check_window(n, "flops", flops)
        self.params_window = _check_window(n, "params", params)
        self.acts_window = _check_window(n, "acts", acts)
        self.input_shape = check_input_shape(f"{n}: input_shape", input_shape, integral_floats=True)
        self.classes = _check_int(n, "classes", classes, 0)
        self.max_tries = _check_int(n, "max_tries", max_tries, 1)
        self._windows = tuple(
            (key, getattr(self, f"{key}_window"))
            for key in ("flops", "params", "acts")
            if getattr(self, f"{key}_window") is not None
        )

    # -- description ---------------------------------------------------------

    def to_dict(self):
        """The space's parameters as a JSON-safe dict; ``get(**d)`` rebuilds it."""
        out = {"name": self.name}
        for key in self._ARGUMENTS:
            value = getattr(self, f"{key}_window" if key in ("flops", "params", "acts") else key)
            if isinstance(value, tuple):
                value = [_json_number(v) for v in value]
            out[key] = value
        return out

    def describe(self):
        """One line for reports: the name and every parameter."""
        parts = []
        for key, value in self.to_dict().items():
            if key == "name" or value is None:
                continue
            parts.append(f"{key}={tuple(value) if isinstance(value, list) else value}")
        return f"{self.name}(" + ", ".join(parts) + ")"

    def __repr__(self):
        return self.describe()

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(repr(self))

    # -- complexity window ---------------------------------------------------

    def complexity(self, spec):
        """`complexity.count` of `spec` at this space's input_shape and classes."""
        return complexity.count(spec, self.input_shape, self.classes)

    def _in_window(self, cx):
        for key, (lo, hi) in self._windows:
            if not lo <= getattr(cx, key) <= hi:
                return False
        return True

    # -- sampling ------------------------------------------------------------

    def sample(self, rng):
        """One network of the space (an `AnyNetSpec`), drawn with `rng`."""
        return self.sample_with_params(rng)[0]

    def sample_with_params(self, rng):
        """``(spec, params)``: a sample and the values drawn for it (JSON-safe dict).

        For AnyNetX spaces the params are the drawn values before the
        compatibility step, keyed as `search_space()`; ``project(params)``
        gives the spec back. For RegNet: depth, w_0, w_a, w_m, group_width and
        bottleneck_ratio, with ``specs.regnet_spec(...)`` giving the spec back.
        """
        _check_rng(rng)
        return next(self._stream(rng))

    def sample_many(self, rng, n, *, with_params=False):
        """`n` samples (a list of specs, or of (spec, params) with ``with_params``).

        Uses every accepted draw of a batch, so it is faster than `n` calls of
        `sample` (and gives other, equally distributed, samples).
        """
        _check_rng(rng)
        n = check_int("n", n, 0, integral_floats=True)
        out = list(itertools.islice(self._stream(rng), n))
        return out if with_params else [spec for spec, _ in out]

    def _stream(self, rng):
        """Endless (spec, params) samples: structural draws, then the window."""
        seen = {key: [math.inf, -math.inf] for key, _ in self._windows}
        rejected = final_rejected = 0
        for spec, params in self._structural(rng):
            if self._windows:
                cx = self.complexity(spec)
                if not self._in_window(cx):
                    rejected += 1
                    for key, bounds in seen.items():
                        value = getattr(cx, key)
                        bounds[0], bounds[1] = min(bounds[0], value), max(bounds[1], value)
                    if rejected >= self.max_tries:
                        raise ValueError(self._window_error(rejected, seen))
                    continue
            if not self._final_ok(spec):
                final_rejected += 1
                if final_rejected > _STRUCTURE_FACTOR * self.max_tries:
                    raise ValueError(self._structure_error(final_rejected))
                continue
            rejected = final_rejected = 0
            for bounds in seen.values():
                bounds[:] = [math.inf, -math.inf]
            yield spec, params

    def _window_error(self, rejected, seen):
        wanted = ", ".join(f"{key} in [{lo:g}, {hi:g}]" for key, (lo, hi) in self._windows)
        got = ", ".join(f"{key} [{lo:g}, {hi:g}]" for key, (lo, hi) in seen.items())
        return (
            f"{self.name}: the complexity window ({wanted}) at input_shape={self.input_shape}, "
            f"classes={self.classes} looks unsatisfiable or too narrow: {rejected} draws in a row "
            f"were rejected (max_tries={self.max_tries}); the rejected draws had {got}. "
            "Widen the window, change the space's ranges, or raise max_tries."
        )

    def _structure_error(self, draws):
        return (
            f"{self.name}: no draw satisfied the space's constraints in {draws} tries "
            f"({self.describe()}); the ranges look unsatisfiable"
        )

    def _structural(self, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _final_ok(self, spec):
        """A last structural check on a draw that passed the window (see RegNet)."""
        return True

    # -- membership ----------------------------------------------------------

    def contains(self, spec):
        """Whether `spec` satisfies every constraint of this space (see module doc)."""
        if not isinstance(spec, AnyNetSpec):
            raise TypeError(f"spec must be an AnyNetSpec, got {type(spec).__name__}")
        if not self._common_ok(spec) or not self._structure_ok(spec):
            return False
        return not self._windows or self._in_window(self.complexity(spec))

    def _common_ok(self, spec):
        if spec.block != "x" or spec.stem_width != self.stem_width or spec.stem_stride != 2:
            return False
        if len(spec.stages) != self.num_stages:
            return False
        return all(s.stride == 2 and s.se_ratio is None for s in spec.stages)

    def _shared_group_ok(self, spec, per_stage_b, per_stage_g):
        """Stages are compatibility fixed points of b (shared or not) and g (shared or not)."""
        choices_b, choices_g = self.bottleneck_ratios, self.group_widths
        ratios = [s.bottleneck_ratio for s in spec.stages]
        if any(b not in choices_b for b in ratios):
            return False
        if not per_stage_b and len(set(ratios)) != 1:
            return False
        common = None
        for s in spec.stages:
            nominal = _nominal_groups(s.width, s.group_width, s.bottleneck_ratio, choices_g)
            if not nominal:
                return False
            if not per_stage_g:
                common = nominal if common is None else common & nominal
                if not common:
                    return False
        return True

    # -- reports -------------------------------------------------------------

    def project(self, values):
        """The spec of this space nearest to a flat dict of proposed values, or None.

        Keys as `search_space()`; floats are fine. Values are rounded to their
        steps and clamped to their ranges, choices go to the nearest one (log
        scale), then the space's constraints (see the subclass); None if the
        result misses the complexity window.
        """
        result = self._project(values)
        return None if result is None else result[0]

    def project_with_params(self, values):
        """``(spec, params)`` for proposed `values`, or None: params are the projected values
        (keyed as `search_space()`), what the projected network actually has, as
        `sample_with_params` gives for a sample."""
        return self._project(values)

    def _project(self, values):  # pragma: no cover - abstract
        raise NotImplementedError

    def hyperparameters(self, spec, params=None):
        """Flat JSON-safe stage values of `spec` (depth_1, width_1, ...).

        Keys of `params` (e.g. from `sample_with_params`) that are not stage
        values are added too (RegNet's w_0, w_a, w_m; a shared space's drawn
        group_width).
        """
        if not isinstance(spec, AnyNetSpec):
            raise TypeError(f"spec must be an AnyNetSpec, got {type(spec).__name__}")
        out = {}
        for i, s in enumerate(spec.stages, 1):
            out[f"depth_{i}"] = int(s.depth)
            out[f"width_{i}"] = int(s.width)
            out[f"bottleneck_ratio_{i}"] = float(s.bottleneck_ratio)
            out[f"group_width_{i}"] = int(s.group_width)
        for key, value in (params or {}).items():
            out.setdefault(key, _plain(value))  # the spec's actual values win over drawn ones
        return out


# ----------------------------------------------------------------------------
# AnyNetX_A..E
# ----------------------------------------------------------------------------


class _AnyNetX(DesignSpace):
    share_b = False
    share_g = False
    monotone_widths = False
    monotone_depths = False

    _ARGUMENTS = (
        "num_stages",
        "stem_width",
        "depth",
        "width",
        "width_step",
        "bottleneck_ratios",
        "group_widths",
        "flops",
        "params",
        "acts",
        "input_shape",
        "classes",
        "max_tries",
    )

    def __init__(
        self,
        *,
        num_stages=4,
        stem_width=32,
        depth=(1, 16),
        width=(8, 1024),
        width_step=8,
        bottleneck_ratios=(1, 2, 4),
        group_widths=(1, 2, 4, 8, 16, 32),
        flops=None,
        params=None,
        acts=None,
        input_shape=(224, 224, 3),
        classes=1000,
        max_tries=10_000,
    ):
        n = self.name
        self._init_common(num_stages, stem_width, flops, params, acts, input_shape, classes, max_tries)
        self.width_step = _check_int(n, "width_step", width_step, 1)
        self.depth = _check_range(n, "depth", depth, integer=True, minimum=1)
        self.width = _check_range(n, "width", width, integer=True, minimum=1, step=self.width_step)
        self.bottleneck_ratios = _check_choices(n, "bottleneck_ratios", bottleneck_ratios, integer=False)
        self.group_widths = _check_choices(n, "group_widths", group_widths, integer=True)
        self._depth_grid = _Grid(*self.depth, 1)
        self._width_grid = _Grid(*self.width, self.width_step)
        self._b_values = np.array(self.bottleneck_ratios, dtype=float)
        self._g_values = np.array(self.group_widths, dtype=np.int64)

    # -- sampling ------------------------------------------------------------

    def _width_batch(self, rng):
        """Draws of the (width, b, g) part; returns (raw widths, b, g, final widths, final g) accepted."""
        n, s = _BATCH, self.num_stages
        raw = self._width_grid.values(self._width_grid.log_uniform(rng, (n, s)))
        b_idx = rng.integers(len(self._b_values), size=(n, 1 if self.share_b else s))
        g_idx = rng.integers(len(self._g_values), size=(n, 1 if self.share_g else s))
        b = np.broadcast_to(self._b_values[b_idx], (n, s))
        g = np.broadcast_to(self._g_values[g_idx], (n, s))
        width, group = _compatible_np(raw, g, b)
        width2, group2 = _compatible_np(width, g, b)  # a fixed point: what contains() checks
        lo, hi = self.width
        ok = (
            (width == width2) & (group == group2) & (width >= lo) & (width <= hi) & (width % self.width_step == 0)
        ).all(axis=1)
        if self.monotone_widths:
            ok &= (np.diff(width, axis=1) >= 0).all(axis=1)
        return n, [(raw[i], b[i], g[i], width[i], group[i]) for i in np.flatnonzero(ok)]

    def _depth_batch(self, rng):
        n = _BATCH
        depths = self._depth_grid.log_uniform(rng, (n, self.num_stages))
        ok = np.ones(n, dtype=bool)
        if self.monotone_depths:
            ok = (np.diff(depths, axis=1) >= 0).all(axis=1)
        return n, [depths[i] for i in np.flatnonzero(ok)]

    def _structural(self, rng):
        widths, depths = [], []
        wi = di = 0
        draws = 0
        limit = _STRUCTURE_FACTOR * self.max_tries
        while True:
            if wi == len(widths):
                drawn, widths = self._width_batch(rng)
                wi, draws = 0, draws + drawn
            if di == len(depths):
                drawn, depths = self._depth_batch(rng)
                di, draws = 0, draws + drawn
            if wi == len(widths) or di == len(depths):
                if draws > limit:
                    raise ValueError(self._structure_error(draws))
                continue
            draws = 0
            raw, b, g, _, _ = widths[wi]
            d = depths[di]
            wi, di = wi + 1, di + 1
            yield self._build(d, raw, b, g)

    def _build(self, depths, raw, b, g):
        stages, params = [], {}
        for i in range(self.num_stages):
            ratio, nominal_g, raw_w = float(b[i]), int(g[i]), int(raw[i])
            width, group = make_compatible(raw_w, nominal_g, ratio)
            stages.append(StageSpec(int(depths[i]), width, group, ratio, 2))
        spec = AnyNetSpec(stem_width=self.stem_width, stages=tuple(stages), block="x")
        for i in range(self.num_stages):
            params[f"depth_{i + 1}"] = int(depths[i])
            params[f"width_{i + 1}"] = int(raw[i])
            if not self.share_b:
                params[f"bottleneck_ratio_{i + 1}"] = float(b[i])
            if not self.share_g:
                params[f"group_width_{i + 1}"] = int(g[i])
        if self.share_b:
            params["bottleneck_ratio"] = float(b[0])
        if self.share_g:
            params["group_width"] = int(g[0])
        return spec, params

    # -- membership ----------------------------------------------------------

    def _structure_ok(self, spec):
        lo_d, hi_d = self.depth
        lo_w, hi_w = self.width
        for s in spec.stages:
            if not lo_d <= s.depth <= hi_d or not lo_w <= s.width <= hi_w or s.width % self.width_step:
                return False
        if self.monotone_widths and any(a > b for a, b in zip(spec.widths, spec.widths[1:])):
            return False
        if self.monotone_depths and any(a > b for a, b in zip(spec.depths, spec.depths[1:])):
            return False
        return self._shared_group_ok(spec, not self.share_b, not self.share_g)

    # -- the tuner's view ----------------------------------------------------

    def search_space(self):
        """The free hyperparameters, keyed as `sample_with_params` / `project` use them.

        Each value is a JSON-safe dict: ``{"type": "int", "min", "max", "step",
        "sampling": "log"}`` or ``{"type": "choice", "values": [...]}``.
        Shared b / g appear once as ``bottleneck_ratio`` / ``group_width``.
        """
        out = {}
        for i in range(1, self.num_stages + 1):
            out[f"depth_{i}"] = {
                "type": "int",
                "min": self.depth[0],
                "max": self.depth[1],
                "step": 1,
                "sampling": "log",
            }
            out[f"width_{i}"] = {
                "type": "int",
                "min": self.width[0],
                "max": self.width[1],
                "step": self.width_step,
                "sampling": "log",
            }
            if not self.share_b:
                out[f"bottleneck_ratio_{i}"] = {"type": "choice", "values": list(self.bottleneck_ratios)}
            if not self.share_g:
                out[f"group_width_{i}"] = {"type": "choice", "values": list(self.group_widths)}
        if self.share_b:
            out["bottleneck_ratio"] = {"type": "choice", "values": list(self.bottleneck_ratios)}
        if self.share_g:
            out["group_width"] = {"type": "choice", "values": list(self.group_widths)}
        return out

    def _project(self, values):
        """`project` with the projected values (keyed as `search_space`): ``(spec, params)`` or None.

        Keys: ``depth_i``, ``width_i`` and ``bottleneck_ratio_i`` /
        ``group_width_i`` (i = 1..num_stages); a shared space also takes
        ``bottleneck_ratio`` / ``group_width`` (else the per-stage proposals'
        median). Other keys are ignored; floats are fine. Depths and widths are
        rounded to their steps and clamped to their ranges, b and g go to the
        nearest choice on a log scale, monotone spaces take a running maximum,
        then the compatibility step. None if the result misses the complexity
        window (or, with unusual overrides, any other constraint).
        """
        if not isinstance(values, dict):
            raise TypeError(f"values must be a dict, got {type(values).__name__}")
        s = self.num_stages
        stage = range(1, s + 1)

        def need(key):
            if key not in values:
                raise ValueError(
                    f"{self.name}: project() needs {key!r}; expected keys like {list(self.search_space())}"
                )
            return check_number(f"{self.name}: project() value {key!r}", values[key])

        depths = [self._depth_grid.value(self._depth_grid.nearest(need(f"depth_{i}"))) for i in stage]
        widths = [self._width_grid.value(self._width_grid.nearest(need(f"width_{i}"))) for i in stage]
        ratios = self._project_choice(values, "bottleneck_ratio", self.bottleneck_ratios, self.share_b, need)
        groups = self._project_choice(values, "group_width", self.group_widths, self.share_g, need)
        if self.monotone_depths:
            depths = list(itertools.accumulate(depths, max))
        for _ in range(3):  # running max, compatibility step; repeat if the step broke monotonicity
            if self.monotone_widths:
                widths = list(itertools.accumulate(widths, max))
            final = [make_compatible(w, g, b) for w, g, b in zip(widths, groups, ratios)]
            new_widths = [w for w, _ in final]
            if not self.monotone_widths or new_widths == sorted(new_widths):
                break
            widths = new_widths
        stages = tuple(StageSpec(d, w, g, b, 2) for d, (w, g), b in zip(depths, final, ratios))
        spec = AnyNetSpec(stem_width=self.stem_width, stages=stages, block="x")
        if not self.contains(spec):
            return None
        params = {}
        for i, s_ in enumerate(stages, 1):
            params.update({f"depth_{i}": s_.depth, f"width_{i}": s_.width})
            if not self.share_b:
                params[f"bottleneck_ratio_{i}"] = s_.bottleneck_ratio
            if not self.share_g:
                params[f"group_width_{i}"] = s_.group_width
        if self.share_b:
            params["bottleneck_ratio"] = ratios[0]
        if self.share_g:
            params["group_width"] = groups[0]
        return spec, {k: _plain(v) for k, v in params.items()}

    def _project_choice(self, values, key, choices, shared, need):
        s = self.num_stages
        if shared:
            if key in values:
                value = _nearest_choice(need(key), choices)
            else:
                value = _median_choice([need(f"{key}_{i}") for i in range(1, s + 1)], choices)
            return [value] * s
        return [_nearest_choice(need(f"{key}_{i}"), choices) for i in range(1, s + 1)]


class AnyNetX_A(_AnyNetX):
    """AnyNetX_A: per-stage depth, width, bottleneck ratio and group width, all free."""

    name = "AnyNetX_A"


class AnyNetX_B(_AnyNetX):
    """AnyNetX_B: AnyNetX_A with one bottleneck ratio shared by all stages."""

    name = "AnyNetX_B"
    parent = "AnyNetX_A"
    share_b = True


class AnyNetX_C(_AnyNetX):
    """AnyNetX_C: AnyNetX_B with one group width shared by all stages too."""

    name = "AnyNetX_C"
    parent = "AnyNetX_B"
    share_b = True
    share_g = True


class AnyNetX_D(_AnyNetX):
    """AnyNetX_D: AnyNetX_C conditioned on non-decreasing stage widths."""

    name = "AnyNetX_D"
    parent = "AnyNetX_C"
    share_b = True
    share_g = True
    monotone_widths = True


class AnyNetX_E(_AnyNetX):
    """AnyNetX_E: AnyNetX_D conditioned on non-decreasing stage depths too."""

    name = "AnyNetX_E"
    parent = "AnyNetX_D"
    share_b = True
    share_g = True
    monotone_widths = True
    monotone_depths = True


# ----------------------------------------------------------------------------
# RegNet
# ----------------------------------------------------------------------------


class RegNet(DesignSpace):
    """RegNet: quasi-linear widths from (depth, w_0, w_a, w_m), shared g and b.

    depth is uniform over the integers of its range; w_0 (step 8), w_a (step
    0.1) and w_m (step 0.001) are log-uniform as pycls's ``log_uniform``;
    g and b uniform over their sets. Widths are quantized to multiples of 8
    (pycls's q). Draws that do not give exactly ``num_stages`` stages are
    rejected.
    """

    name = "RegNet"
    parent = None  # RegNets need not lie in AnyNetX_E's depth/width ranges
    W_0_STEP, W_A_STEP, W_M_STEP, Q = 8, 0.1, 0.001, 8

    _ARGUMENTS = (
        "num_stages",
        "stem_width",
        "depth",
        "w_0",
        "w_a",
        "w_m",
        "bottleneck_ratios",
        "group_widths",
        "flops",
        "params",
        "acts",
        "input_shape",
        "classes",
        "max_tries",
    )

    def __init__(
        self,
        *,
        num_stages=4,
        stem_width=32,
        depth=(12, 28),
        w_0=(8, 256),
        w_a=(8.0, 256.0),
        w_m=(2.0, 3.0),
        bottleneck_ratios=(1, 2, 4),
        group_widths=(1, 2, 4, 8, 16, 32),
        flops=None,
        params=None,
        acts=None,
        input_shape=(224, 224, 3),
        classes=1000,
        max_tries=10_000,
    ):
        n = self.name
        self._init_common(num_stages, stem_width, flops, params, acts, input_shape, classes, max_tries)
        self.depth = _check_range(n, "depth", depth, integer=True, minimum=1)
        if self.depth[1] < self.num_stages:
            raise ValueError(
                f"{n}: depth range {self.depth} cannot give {self.num_stages} stages "
                f"(each stage needs a block): the high end must be >= num_stages"
            )
        self.w_0 = _check_range(n, "w_0", w_0, integer=True, minimum=self.W_0_STEP, step=self.W_0_STEP)
        self.w_a = _check_range(n, "w_a", w_a, integer=False, minimum=self.W_A_STEP, step=self.W_A_STEP)
        self.w_m = _check_range(n, "w_m", w_m, integer=False, minimum=1.0, step=self.W_M_STEP, strict_minimum=True)
        self.bottleneck_ratios = _check_choices(n, "bottleneck_ratios", bottleneck_ratios, integer=False)
        self.group_widths = _check_choices(n, "group_widths", group_widths, integer=True)
        self._w0_grid = _Grid(*self.w_0, self.W_0_STEP)
        self._wa_grid = _Grid(*self.w_a, self.W_A_STEP)
        self._wm_grid = _Grid(*self.w_m, self.W_M_STEP)
        self._b_values = np.array(self.bottleneck_ratios, dtype=float)
        self._g_values = np.array(self.group_widths, dtype=np.int64)

    # -- sampling ------------------------------------------------------------

    def _batch(self, rng):
        """A batch of draws; returns the rows that may give num_stages stages."""
        n, q = _BATCH, self.Q
        d = rng.integers(self.depth[0], self.depth[1], size=n, endpoint=True)
        w0 = self._w0_grid.values(self._w0_grid.log_uniform(rng, n))
        wa = self._wa_grid.values(self._wa_grid.log_uniform(rng, n))
        wm = self._wm_grid.values(self._wm_grid.log_uniform(rng, n))
        g = self._g_values[rng.integers(len(self._g_values), size=n)]
        b = self._b_values[rng.integers(len(self._b_values), size=n)]
        widths, steps, tie = quantized_widths_batch(w0[:, None], wa[:, None], wm[:, None], self.depth[1], q)
        valid = np.arange(self.depth[1])[None, :] < d[:, None]
        # Rows with a value at a rounding tie are decided by the scalar code (specs.regnet_spec).
        ambiguous = (tie & valid).any(axis=1)
        max_step = np.where(valid, steps, -1).max(axis=1)
        rises = (widths[:, 1:] != widths[:, :-1]) & valid[:, 1:]
        distinct = 1 + rises.sum(axis=1)
        maybe = ((max_step + 1 == self.num_stages) & (distinct == self.num_stages)) | ambiguous

        def rows():  # lazily: sample() uses only the first good row of a batch
            for i in np.flatnonzero(maybe):
                params = {
                    "depth": int(d[i]),
                    "w_0": int(w0[i]),
                    "w_a": float(wa[i]),
                    "w_m": float(wm[i]),
                    "group_width": int(g[i]),
                    "bottleneck_ratio": float(b[i]),
                }
                if ambiguous[i]:
                    yield params, None
                else:  # stage widths (before the compatibility step) and depths
                    starts = np.concatenate(([0], np.flatnonzero(rises[i]) + 1, [d[i]]))
                    yield params, (widths[i, starts[:-1]].astype(int).tolist(), np.diff(starts).tolist())

        return n, rows()

    def _generate(self, params, stages=None):
        """(spec, params) from RegNet parameters, or None if not exactly num_stages stages.

        `stages` = (widths, depths) before the compatibility step, when the
        vectorized rule already computed them; else `specs.regnet_spec` does.
        """
        depth, w_0, w_a, w_m = params["depth"], params["w_0"], params["w_a"], params["w_m"]
        g, b = params["group_width"], params["bottleneck_ratio"]
        if stages is None:
            steps = quantized_widths_batch(w_0, w_a, w_m, depth, self.Q)[1]
            if int(steps.max()) + 1 != self.num_stages:
                return None
            spec = regnet_spec(w_0, w_a, w_m, depth, g, b, q=self.Q, stem_width=self.stem_width)
            if len(spec.stages) != self.num_stages:
                return None
        else:
            built = []
            for width, stage_depth in zip(*stages):
                width, group = make_compatible(width, g, b)
                built.append(StageSpec(stage_depth, width, group, b, 2))
            spec = AnyNetSpec(stem_width=self.stem_width, stages=tuple(built), block="x")
        return spec, params

    def _structural(self, rng):
        draws = 0
        limit = _STRUCTURE_FACTOR * self.max_tries
        while True:
            drawn, rows = self._batch(rng)
            draws += drawn
            for row in rows:
                result = self._generate(*row)
                if result is None:
                    continue
                draws = 0
                yield result
            if draws > limit:
                raise ValueError(self._structure_error(draws))

    def _final_ok(self, spec):
        # Always true for b >= 1 (the compatibility step is then monotone and idempotent);
        # checked after the window, where it is cheap, so that every sample is in the space.
        return self._structure_ok(spec)

    # -- membership ----------------------------------------------------------

    def _structure_ok(self, spec):
        if not self.depth[0] <= spec.depth <= self.depth[1]:
            return False
        if any(a > b for a, b in zip(spec.widths, spec.widths[1:])):
            return False
        return self._shared_group_ok(spec, per_stage_b=False, per_stage_g=False)

    # -- the tuner's view ----------------------------------------------------

    def search_space(self):
        """The free hyperparameters (see `_AnyNetX.search_space` for the format)."""
        return {
            "depth": {"type": "int", "min": self.depth[0], "max": self.depth[1], "step": 1, "sampling": "linear"},
            "w_0": {"type": "int", "min": self.w_0[0], "max": self.w_0[1], "step": self.W_0_STEP, "sampling": "log"},
            "w_a": {"type": "float", "min": self.w_a[0], "max": self.w_a[1], "step": self.W_A_STEP, "sampling": "log"},
            "w_m": {"type": "float", "min": self.w_m[0], "max": self.w_m[1], "step": self.W_M_STEP, "sampling": "log"},
            "bottleneck_ratio": {"type": "choice", "values": list(self.bottleneck_ratios)},
            "group_width": {"type": "choice", "values": list(self.group_widths)},
        }

    def _project(self, values):
        """The RegNet nearest to proposed (depth, w_0, w_a, w_m, group_width, bottleneck_ratio), or None.

        Values are rounded to their steps and clamped to their ranges, b and g
        go to the nearest choice (log scale). None when the parameters do not
        give exactly num_stages stages or miss the complexity window.
        """
        if not isinstance(values, dict):
            raise TypeError(f"values must be a dict, got {type(values).__name__}")
        got = {}
        for key in self.search_space():
            if key not in values:
                raise ValueError(f"{self.name}: project() needs {key!r}; expected keys {list(self.search_space())}")
            got[key] = check_number(f"{self.name}: project() value {key!r}", values[key])
        depth = min(max(int(math.floor(got["depth"] + 0.5)), self.depth[0]), self.depth[1])
        w_0 = self._w0_grid.value(self._w0_grid.nearest(got["w_0"]))
        w_a = self._wa_grid.value(self._wa_grid.nearest(got["w_a"]))
        w_m = self._wm_grid.value(self._wm_grid.nearest(got["w_m"]))
        g = _nearest_choice(got["group_width"], self.group_widths)
        b = _nearest_choice(got["bottleneck_ratio"], self.bottleneck_ratios)
        params = {"depth": depth, "w_0": w_0, "w_a": w_a, "w_m": w_m, "group_width": g, "bottleneck_ratio": b}
        result = self._generate(params)
        if result is None or not self.contains(result[0]):
            return None
        return result[0], {k: _plain(v) for k, v in params.items()}

    def hyperparameters(self, spec, params=None):
        """Per-stage values of `spec` plus its total ``depth``, plus `params` if given."""
        out = super().hyperparameters(spec, params)
        out["depth"] = int(spec.depth)
        return out


# ----------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------

SPACES = {cls.name: cls for cls in (AnyNetX_A, AnyNetX_B, AnyNetX_C, AnyNetX_D, AnyNetX_E, RegNet)}


def names():
    """The names of the design spaces, in the paper's order."""
    return tuple(SPACES)


def get(name, **overrides):
    """A design space by name, e.g. ``get("AnyNetX_E", flops=(360e6, 440e6))``.

    `overrides` are the space's constructor parameters (see ``to_dict()``);
    an unknown name or key, or a bad value, raises ValueError naming it.
    ``get(**space.to_dict())`` rebuilds a space.
    """
    if isinstance(name, DesignSpace):
        raise TypeError("get() takes a space name; the object is already a space")
    cls = SPACES.get(name)
    if cls is None and isinstance(name, str):
        cls = {key.lower(): value for key, value in SPACES.items()}.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown design space {name!r}; choose one of: {', '.join(SPACES)}")
    unknown = sorted(set(overrides) - set(cls._ARGUMENTS))
    if unknown:
        raise ValueError(
            f"{cls.name}: unknown parameter(s) {', '.join(map(repr, unknown))}; valid ones: {', '.join(cls._ARGUMENTS)}"
        )
    return cls(**overrides)
