"""Statistics that compare network design spaces (the figures are in :mod:`keras_regnet.plots`).

This module implements the analysis tools of Radosavovic et al., "On Network
Design Spaces for Visual Recognition" (ICCV 2019) and "Designing Network
Design Spaces" (CVPR 2020):

* :func:`edf` -- the error empirical distribution function (EDF) of a sample of
  models, ``F(e) = (1/n) * sum_i 1[e_i < e]``;
* :func:`normalized_edf` / :func:`complexity_weights` -- the
  complexity-normalized EDF, which reweights models so that design spaces with
  different complexity (flops) mixes can be compared fairly;
* :func:`ks_test` -- the two-sample Kolmogorov-Smirnov test between the error
  samples of two design spaces;
* :func:`median_difference` / :func:`edf_area` -- effect sizes of two error
  samples, with :func:`bootstrap_interval` for their uncertainty;
* :func:`good_range` -- the bootstrap "good range" of a design parameter;
* :func:`fit_regnet` -- the grid-search fit of the quantized linear
  parameterization of per-block widths (:func:`quantized_widths`, re-exported
  from :mod:`keras_regnet.specs`).

It imports only numpy, scipy and the package's pure-Python specs (never
TensorFlow, Keras or matplotlib).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from keras_regnet.specs import quantized_widths
from keras_regnet.validation import check_int, check_number, is_int, is_number

__all__ = [
    "EDFCurve",
    "KSResult",
    "GoodRange",
    "RegNetFit",
    "edf",
    "complexity_weights",
    "normalized_edf",
    "ks_test",
    "ks_exact_p",
    "minimum_detectable_d",
    "spearman",
    "Interval",
    "median_difference",
    "edf_area",
    "bootstrap_interval",
    "good_range",
    "quantized_widths",
    "fit_regnet",
]


# ----------------------------------------------------------------------------
# Result types
# ----------------------------------------------------------------------------


class EDFCurve(NamedTuple):
    """Step points of an EDF, ready for plotting.

    ``errors`` are the distinct error values in increasing order and
    ``fractions[k]`` is the (weighted) fraction of models whose error is
    ``<= errors[k]``, i.e. the value the EDF takes just to the *right* of
    ``errors[k]``.  Under the strict convention ``F(e) = (1/n) sum 1[e_i < e]``
    the EDF *at* ``errors[k]`` is ``fractions[k - 1]`` (0 for ``k = 0``): the
    curve is a right-open staircase; draw it with ``drawstyle="steps-post"``.
    """

    errors: np.ndarray
    fractions: np.ndarray


class KSResult(NamedTuple):
    """Two-sample Kolmogorov-Smirnov statistic ``D = sup |F_a - F_b|`` and p-value."""

    statistic: float
    pvalue: float


@dataclass(frozen=True)
class GoodRange:
    """Bootstrap interval of the best models' value of a design parameter.

    ``low`` / ``median`` / ``high`` are the 2.5 / 50 / 97.5 percentiles of the
    parameter value of the lowest-error model over ``n_boot`` resamples.
    """

    low: float
    median: float
    high: float
    fraction: float
    n_boot: int

    def as_dict(self) -> dict:
        return {"low": self.low, "median": self.median, "high": self.high}

    def __contains__(self, value) -> bool:
        return self.low <= value <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


class Interval(NamedTuple):
    """An effect size on the full samples and its bootstrap interval (see :func:`bootstrap_interval`)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


class RegNetFit(NamedTuple):
    """Best quantized-linear fit of per-block widths (see :func:`fit_regnet`)."""

    w_0: float
    w_a: float
    w_m: float
    fit_error: float


# ----------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------


def _as_1d_float(x, name: str, *, allow_empty: bool = False) -> np.ndarray:
    if isinstance(x, (str, bytes)) or isinstance(x, Mapping):
        raise TypeError(f"`{name}` must be a 1-D sequence of numbers, got {type(x).__name__}.")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a 1-D sequence of numbers: {exc}") from None
    if arr.ndim == 0:
        raise ValueError(f"`{name}` must be a 1-D sequence of numbers, got a scalar.")
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got an array of shape {arr.shape}.")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"`{name}` must not be empty.")
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN; only finite values are allowed.")
    if np.isinf(arr).any():
        raise ValueError(f"`{name}` contains inf; only finite values are allowed.")
    return arr


def _as_errors(x, name: str = "errors") -> np.ndarray:
    return _as_1d_float(x, name)


def _as_complexity(x, name: str = "complexity") -> np.ndarray:
    arr = _as_1d_float(x, name)
    if (arr <= 0).any():
        raise ValueError(f"`{name}` must be strictly positive (e.g. flops or params), got minimum {arr.min():g}.")
    return arr


def _check_same_length(a, b, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"`{name_a}` and `{name_b}` must have the same length, got {len(a)} and {len(b)}.")


def _check_range(r, name: str, *, positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = r
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a (low, high) pair, got {r!r}.") from None
    lo, hi = check_number(f"`{name}[0]`", lo), check_number(f"`{name}[1]`", hi)
    if lo > hi:
        raise ValueError(f"`{name}` must satisfy low <= high, got {r!r}.")
    if positive and lo <= 0:
        raise ValueError(f"`{name}` must be strictly positive, got {r!r}.")
    return lo, hi


# ----------------------------------------------------------------------------
# EDFs
# ----------------------------------------------------------------------------


def _is_scalar(x) -> bool:
    """A real number or a 0-d array (a point of an EDF, not a sequence of points)."""
    return is_number(x) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _weighted_edf(errors: np.ndarray, weights: np.ndarray, at):
    """Weighted strict EDF: F(e) = sum_i w_i 1[e_i < e] / sum_i w_i."""
    order = np.argsort(errors, kind="stable")
    sorted_errors = errors[order]
    cum = np.cumsum(weights[order])
    total = cum[-1]
    if at is not None:
        scalar = _is_scalar(at)
        points = _as_1d_float(np.atleast_1d(at) if scalar else at, "at", allow_empty=True)
        # k = number of errors strictly below each point (bisect_left).
        k = np.searchsorted(sorted_errors, points, side="left")
        out = np.where(k > 0, cum[np.maximum(k - 1, 0)] / total, 0.0)
        out[k == errors.size] = 1.0
        return float(out[0]) if scalar else out
    uniq = np.unique(sorted_errors)
    # index of the last occurrence of each distinct value in the sorted array
    last = np.searchsorted(sorted_errors, uniq, side="right") - 1
    fractions = np.minimum(cum[last] / total, 1.0)
    fractions[-1] = 1.0
    return EDFCurve(uniq, fractions)


def edf(errors, at=None):
    """Error empirical distribution function (EDF).

    Uses the **strict** convention of Radosavovic et al. (2019):
    ``F(e) = (1/n) * sum_i 1[e_i < e]``, the fraction of models whose error is
    *strictly* below ``e``.  So ``F(min(errors)) == 0`` and
    ``F(e) == 1`` only for ``e > max(errors)``; tied errors all jump at once.

    Args:
        errors: 1-D sequence of finite model errors (any unit, e.g. % top-1).
        at: optional scalar or 1-D sequence of points at which to evaluate F.

    Returns:
        If ``at`` is given: ``F(at)`` -- a float for a scalar ``at``, else a
        float array of the same length.  Otherwise an :class:`EDFCurve`
        ``(errors, fractions)`` of step points: the distinct errors in
        increasing order and the fraction of models with error ``<=`` each (the
        value of F just right of the jump); plot with
        ``ax.plot(*curve, drawstyle="steps-post")``.

    Raises:
        ValueError: if ``errors`` is empty, not 1-D, or has NaN/inf.
    """
    errors = _as_errors(errors)
    return _weighted_edf(errors, np.full(errors.size, 1.0 / errors.size), at)


def _bin_indices(complexity: np.ndarray, bins: int, log_bins: bool, complexity_range):
    if complexity_range is None:
        lo, hi = float(complexity.min()), float(complexity.max())
    else:
        lo, hi = _check_range(complexity_range, "complexity_range", positive=True)
        if complexity.min() < lo or complexity.max() > hi:
            raise ValueError(
                f"`complexity` values must lie inside `complexity_range` {complexity_range!r}, "
                f"got [{complexity.min():g}, {complexity.max():g}]."
            )
    if hi == lo:
        return np.zeros(complexity.size, dtype=int)
    if log_bins:
        x, lo, hi = np.log(complexity), math.log(lo), math.log(hi)
    else:
        x = complexity
    # Bin k covers [lo + k*h, lo + (k+1)*h); the maximum goes into the last bin.
    idx = np.floor((x - lo) / (hi - lo) * bins).astype(int)
    return np.clip(idx, 0, bins - 1)


def complexity_weights(complexity, bins=10, *, log_bins=True, complexity_range=None):
    """Per-model weights that flatten the complexity distribution (ICCV 2019).

    The complexity range ``[min, max]`` (or ``complexity_range``) is split into
    ``bins`` equal bins -- equal in ``log(complexity)`` when ``log_bins`` (the
    default, since flops span orders of magnitude), else equal in complexity.
    A model in bin ``k`` gets weight ``1 / (n_k * K')``, where ``n_k`` is the
    number of models in bin ``k`` and ``K'`` the number of **non-empty** bins.
    Each non-empty bin thus carries total weight ``1/K'``, and the weights sum
    to 1.  (Empty bins are dropped rather than given weight ``1/K`` that no
    model could carry.)  When every non-empty bin holds the same number of
    models all weights equal ``1/n``, i.e. the normalized EDF is the plain EDF.

    To compare several design spaces fairly, pass the same
    ``complexity_range`` (e.g. the union of their ranges) to each.

    Args:
        complexity: 1-D sequence of strictly positive complexities (flops,
            params or activations).
        bins: number of bins ``K >= 1``.
        log_bins: log-spaced (default) or linearly spaced bins.
        complexity_range: optional ``(low, high)`` range to bin; all
            complexities must lie inside it. Defaults to the data's range.

    Returns:
        Float array of weights, same length as ``complexity``, summing to 1.
    """
    complexity = _as_complexity(complexity)
    bins = check_int("`bins`", bins, 1)
    idx = _bin_indices(complexity, bins, bool(log_bins), complexity_range)
    counts = np.bincount(idx, minlength=bins)
    n_nonempty = int(np.count_nonzero(counts))
    return 1.0 / (counts[idx] * n_nonempty)


def normalized_edf(errors, complexity, bins=10, at=None, log_bins=True, *, complexity_range=None):
    """Complexity-normalized error EDF (Radosavovic et al., ICCV 2019).

    ``F_w(e) = sum_i w_i * 1[e_i < e]`` with the weights ``w_i`` of
    :func:`complexity_weights` (same strict inequality as :func:`edf`).  This
    removes the effect of a design space's complexity mix: larger models tend
    to have lower error, so a space that simply samples bigger models would
    otherwise look better.

    Args:
        errors: 1-D sequence of finite errors.
        complexity: 1-D sequence of positive complexities, same length.
        bins, log_bins, complexity_range: see :func:`complexity_weights`.
        at: optional scalar or sequence of evaluation points.

    Returns:
        Like :func:`edf`: ``F_w(at)`` if ``at`` is given, else an
        :class:`EDFCurve` of weighted step points.
    """
    errors = _as_errors(errors)
    complexity = _as_complexity(complexity)
    _check_same_length(errors, complexity, "errors", "complexity")
    weights = complexity_weights(complexity, bins, log_bins=log_bins, complexity_range=complexity_range)
    return _weighted_edf(errors, weights, at)


# ----------------------------------------------------------------------------
# Comparisons
# ----------------------------------------------------------------------------


def ks_test(errors_a, errors_b, *, alternative="two-sided"):
    """Two-sample Kolmogorov-Smirnov test between two design spaces' errors.

    A thin, validated wrapper around :func:`scipy.stats.ks_2samp`. The
    statistic is ``D = sup_e |F_a(e) - F_b(e)|`` of the (unweighted) EDFs; a
    small p-value means the two spaces' error distributions differ.

    Returns:
        :class:`KSResult` ``(statistic, pvalue)`` of Python floats.
    """
    from scipy import stats

    a = _as_errors(errors_a, "errors_a")
    b = _as_errors(errors_b, "errors_b")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(f"`alternative` must be 'two-sided', 'less' or 'greater', got {alternative!r}.")
    res = stats.ks_2samp(a, b, alternative=alternative)
    return KSResult(float(res.statistic), float(res.pvalue))


def ks_exact_p(n, m, d):
    """Exact two-sided P(D >= d) of the two-sample KS test for sizes n and m (no ties).

    Counts the monotone lattice paths from (0, 0) to (n, m) that stay strictly
    inside |i/n - j/m| < d (Hodges 1957), the distribution that scipy's
    `ks_2samp` uses at these sizes; integer arithmetic, so no rounding.
    """
    limit = d * n * m - 1e-9 * n * m  # |i*m - j*n| < d*n*m, with float d
    row = [1] + [0] * m
    for j in range(1, m + 1):
        row[j] = row[j - 1] if abs(j * n) < limit else 0
    for i in range(1, n + 1):
        row[0] = row[0] if abs(i * m) < limit else 0
        for j in range(1, m + 1):
            row[j] = (row[j] + row[j - 1]) if abs(i * m - j * n) < limit else 0
    return 1.0 - row[m] / math.comb(n + m, n)


def minimum_detectable_d(n, m, alpha=0.05):
    """Smallest KS D that the exact two-sided test calls significant at `alpha` (None: none can be).

    D only takes the values |i*m - j*n| / (n*m); the smallest significant one is
    found by bisection over them with `ks_exact_p`.
    """
    candidates = sorted({abs(i * m - j * n) for i in range(n + 1) for j in range(m + 1)} - {0})
    if ks_exact_p(n, m, 1.0) >= alpha:
        return None
    lo, hi = 0, len(candidates) - 1  # candidates[hi] is significant
    while lo < hi:
        mid = (lo + hi) // 2
        if ks_exact_p(n, m, candidates[mid] / (n * m)) < alpha:
            hi = mid
        else:
            lo = mid + 1
    return candidates[hi] / (n * m)


def spearman(short, long):
    """(rho, p) of scipy.stats.spearmanr; rho is NaN when either side is constant."""
    from scipy import stats

    res = stats.spearmanr(short, long)
    return float(res[0]), float(res[1])


def median_difference(errors_a, errors_b):
    """median(errors_b) - median(errors_a): negative when b's typical error is lower."""
    a = _as_errors(errors_a, "errors_a")
    b = _as_errors(errors_b, "errors_b")
    return float(np.median(b) - np.median(a))


def edf_area(errors_a, errors_b):
    """Signed area between two error EDFs: the integral of F_b(e) - F_a(e) de over the pooled error range.

    Positive when b's EDF lies above a's, i.e. b has lower errors (the sign of
    the paper's "better"); in error units. Both EDFs are 0 below the pooled
    minimum and 1 above the pooled maximum, so the area is exactly
    ``mean(errors_a) - mean(errors_b)``: unlike KS D (the largest gap) it
    weighs every gap by its width.
    """
    a = _as_errors(errors_a, "errors_a")
    b = _as_errors(errors_b, "errors_b")
    grid = np.unique(np.concatenate([a, b]))
    if grid.size < 2:
        return 0.0
    # On [grid[k], grid[k+1]) each strict EDF is constant at its value just right of grid[k].
    right = np.nextafter(grid[:-1], np.inf)
    gap = edf(b, at=right) - edf(a, at=right)
    return float(np.sum(gap * np.diff(grid)))


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or is_int(seed):
        return np.random.default_rng(seed)
    raise TypeError(f"`seed` must be an int, None or a numpy Generator, got {seed!r}.")


# The effect sizes over a batch of resamples (one per row) at once: the same numbers as a loop of calls.
_BATCHED = {
    median_difference: lambda a, b: np.median(b, axis=1) - np.median(a, axis=1),
    edf_area: lambda a, b: a.mean(axis=1) - b.mean(axis=1),  # the area is exactly mean(a) - mean(b)
}


def bootstrap_interval(errors_a, errors_b, statistic, n_boot=2000, seed=0, level=0.95):
    """Percentile bootstrap interval of ``statistic(errors_a, errors_b)``.

    Each of the ``n_boot`` resamples draws ``len(errors_a)`` errors from
    ``errors_a`` and, independently, ``len(errors_b)`` from ``errors_b``, with
    replacement (the two spaces are independent samples); the interval is
    the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the
    resampled statistic. With few models per space the interval is wide,
    which is the point: it says how little the samples pin the effect down.

    Args:
        errors_a, errors_b: 1-D sequences of finite errors.
        statistic: callable ``(a, b) -> float`` on two 1-D float arrays, e.g.
            :func:`median_difference` or :func:`edf_area`.
        n_boot: number of resamples, ``>= 1``.
        seed: int, ``None`` or a ``numpy.random.Generator``; the same seed
            gives the same interval.
        level: coverage in ``(0, 1)``.

    Returns:
        :class:`Interval` ``(value, low, high)``: the statistic on the full
        samples and the interval's ends.
    """
    a = _as_errors(errors_a, "errors_a")
    b = _as_errors(errors_b, "errors_b")
    if not callable(statistic):
        raise TypeError(f"`statistic` must be a callable (a, b) -> float, got {type(statistic).__name__}.")
    n_boot = check_int("`n_boot`", n_boot, 1)
    level = check_number("`level`", level, 0, 1, min_open=True, max_open=True)
    rng = _rng(seed)
    value = float(statistic(a, b))
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    batched = _BATCHED.get(statistic)
    if batched is not None:
        boot = batched(a[ia], b[ib])
    else:
        boot = np.array([float(statistic(a[i], b[j])) for i, j in zip(ia, ib)])
    low, high = np.percentile(boot, [50.0 * (1 - level), 50.0 * (1 + level)])
    return Interval(value, float(low), float(high))


def good_range(values, errors, *, fraction=0.25, n_boot=10000, seed=0):
    """Bootstrap "good range" of a design parameter (CVPR 2020, Sec. 3).

    Repeats ``n_boot`` times: draw ``m = max(1, round(fraction * n))`` models
    with replacement, keep the parameter value of the lowest-error model
    (first drawn on ties).  Reports the 2.5 / 50 / 97.5 percentiles of those
    values: a 95% interval of where the best models' parameter lies.

    Args:
        values: 1-D sequence of the parameter's value for each model.
        errors: 1-D sequence of errors, same length.
        fraction: share of the models drawn per resample, in ``(0, 1]``.
        n_boot: number of resamples ``>= 1``.
        seed: integer seed (or ``None``, or a ``numpy.random.Generator``);
            the same seed gives the same result.

    Returns:
        :class:`GoodRange` with ``low``, ``median``, ``high`` (``as_dict()``
        gives a dict) and ``value in result`` tests membership.
    """
    values = _as_1d_float(values, "values")
    errors = _as_errors(errors)
    _check_same_length(values, errors, "values", "errors")
    fraction = check_number("`fraction`", fraction, 0, 1, min_open=True)
    n_boot = check_int("`n_boot`", n_boot, 1)
    rng = _rng(seed)
    n = errors.size
    m = max(1, int(round(fraction * n)))
    best = np.empty(n_boot)
    chunk = max(1, 2_000_000 // m)  # bound memory to ~16 MB of indices
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, m))
        pick = np.argmin(errors[idx], axis=1)
        best[start:stop] = values[idx[np.arange(stop - start), pick]]
    low, median, high = np.percentile(best, [2.5, 50.0, 97.5])
    return GoodRange(float(low), float(median), float(high), fraction, n_boot)


# ----------------------------------------------------------------------------
# Fitting the RegNet quantized linear widths
# ----------------------------------------------------------------------------


def _validate_widths(widths, name="widths_per_block") -> np.ndarray:
    arr = _as_1d_float(widths, name)
    if (arr <= 0).any():
        raise ValueError(f"`{name}` must be strictly positive widths, got minimum {arr.min():g}.")
    return arr


# Coarse-grid resolution and refinement breadth of fit_regnet (tuned so that widths
# generated by quantized_widths are recovered exactly).
_N_WA = 96
_WM_STEP = 0.02
_TOP_PER_W0 = 4
_N_REFINE = 24


class _FitGrid:
    """Vectorized evaluation of the mean |log-ratio| error over a parameter grid."""

    def __init__(self, log_obs: np.ndarray, q: int):
        self.log_obs = log_obs
        self.j = np.arange(log_obs.size, dtype=float)
        self.q = q

    def errors(self, w_0: float, w_as: np.ndarray, w_ms: np.ndarray) -> np.ndarray:
        """Error for every (w_m, w_a) pair at fixed w_0: shape (len(w_ms), len(w_as))."""
        # stage index of block j: round(log(1 + j w_a / w_0) / log(w_m))
        r = np.log1p(np.outer(w_as, self.j) / w_0)  # (A, d)
        log_m = np.log(w_ms)  # (M,)
        ks = np.rint(r[None, :, :] / log_m[:, None, None]).astype(np.intp)  # (M, A, d)
        k_max = int(ks.max()) + 1
        # log of the quantized width at every (w_m, stage): (M, k_max)
        lvl = w_0 * np.power(w_ms[:, None], np.arange(k_max)[None, :])
        lvl = np.maximum(np.rint(lvl / self.q) * self.q, self.q)
        log_lvl = np.log(lvl)
        log_fit = np.take_along_axis(log_lvl[:, None, :], ks.reshape(ks.shape[0], -1)[:, None, :], axis=2).reshape(
            ks.shape
        )
        return np.abs(log_fit - self.log_obs).mean(axis=2)


def fit_regnet(
    widths_per_block,
    *,
    q=8,
    w_0_range=(8, 256),
    w_a_range=(0.0, 256.0),
    w_m_range=(1.5, 3.0),
):
    """Fit the quantized linear width parameterization to per-block widths.

    Following the CVPR 2020 paper (Sec. 3.3), the widths ``w_j`` of blocks
    ``j = 0..d-1`` are compared with ``quantized_widths(w_0, w_a, w_m, d, q)``
    and the parameters minimize the paper's ``e_fit``, the **mean absolute
    log-ratio** ``mean_j |log(w_j) - log(w_j_fit)|`` (0 for an exact fit;
    0.05 is roughly a 5% average width mismatch).

    Search (vectorized numpy):
    ``w_0`` over the multiples of ``q`` in ``w_0_range``; ``(w_a, w_m)`` first
    on a coarse grid (96 log-spaced slopes, ``w_m`` step 0.02), then refined
    twice around the best coarse candidates (``w_m`` steps 1e-3 then 5e-5).
    ``e_fit`` is piecewise constant, so this is a heuristic: widths generated
    by :func:`quantized_widths` are recovered exactly (``e_fit == 0``; checked
    on hundreds of random parameter draws), while for widths that no
    quantized line matches the result is near-optimal (within a few % of a
    dense brute-force grid when a tiny optimal region is missed).  Ties go to
    the earliest grid point, and ``w_a``/``w_m`` are rounded to 2 decimals (as
    the paper reports them) when that does not increase the error.

    Args:
        widths_per_block: 1-D sequence of positive per-block widths.
        q: width quantum (8 in the paper).
        w_0_range, w_a_range, w_m_range: search ranges; defaults are the
            paper's RegNet design space (``w_0`` <= 256; widen ``w_0_range``
            for e.g. RegNetX-32GF whose ``w_0`` is 320).

    Returns:
        :class:`RegNetFit` ``(w_0, w_a, w_m, fit_error)`` of Python floats.
    """
    ws = _validate_widths(widths_per_block)
    q = check_int("`q`", q, 1)
    w0_lo, w0_hi = _check_range(w_0_range, "w_0_range", positive=True)
    wa_lo, wa_hi = _check_range(w_a_range, "w_a_range")
    wm_lo, wm_hi = _check_range(w_m_range, "w_m_range")
    if wa_lo < 0:
        raise ValueError(f"`w_a_range` must be non-negative, got {w_a_range!r}.")
    if wm_lo <= 1:
        raise ValueError(f"`w_m_range` must lie above 1, got {w_m_range!r}.")
    w0s = np.arange(math.ceil(w0_lo / q) * q, w0_hi + 1e-9, q, dtype=float)
    if w0s.size == 0:
        raise ValueError(f"`w_0_range` {w_0_range!r} contains no multiple of q={q}.")

    grid = _FitGrid(np.log(ws), q)
    d = ws.size
    if d == 1 or wa_hi == 0:
        # Only w_0 matters (all blocks in stage 0).
        errs = [float(grid.errors(w0, np.array([wa_lo]), np.array([wm_lo]))[0, 0]) for w0 in w0s]
        i = int(np.argmin(errs))
        return RegNetFit(float(w0s[i]), float(wa_lo), float(wm_lo), errs[i])

    # Coarse grid: log-spaced slopes (their effect is relative to w_0) + the ends.
    lo_pos = max(wa_lo, 1e-2)
    w_as = np.unique(
        np.concatenate([[wa_lo, wa_hi], np.geomspace(max(lo_pos, 0.25), wa_hi, _N_WA) if wa_hi > lo_pos else []])
    )
    w_as = w_as[(w_as >= wa_lo) & (w_as <= wa_hi)]
    w_ms = np.unique(np.concatenate([np.arange(wm_lo, wm_hi, _WM_STEP), [wm_hi]]))

    candidates = []  # (err, w0, wa, wm)
    for w0 in w0s:
        e = grid.errors(w0, w_as, w_ms)
        flat = np.argsort(e, axis=None, kind="stable")[:_TOP_PER_W0]
        for f in flat:
            mi, ai = np.unravel_index(f, e.shape)
            candidates.append((float(e[mi, ai]), float(w0), float(w_as[ai]), float(w_ms[mi])))
    candidates.sort(key=lambda c: c[0])

    def refine(cands, wm_half, wm_step, wa_ratio, n_wa):
        out = []
        for _, w0, wa, wm in cands:
            lo_m, hi_m = max(wm_lo, wm - wm_half), min(wm_hi, wm + wm_half)
            ms = np.unique(np.concatenate([np.arange(lo_m, hi_m, wm_step), [hi_m, wm]]))
            if wa > 0:
                as_ = np.geomspace(max(wa / wa_ratio, lo_pos), min(wa * wa_ratio, wa_hi), n_wa)
                as_ = np.unique(np.concatenate([as_, [wa]]))
                as_ = as_[(as_ >= wa_lo) & (as_ <= wa_hi)]
            else:
                as_ = np.unique(np.concatenate([[wa], np.linspace(wa, min(wa_hi, 1.0), n_wa)]))
            e = grid.errors(w0, as_, ms)
            flat = np.argsort(e, axis=None, kind="stable")[:2]
            for f in flat:
                mi, ai = np.unravel_index(f, e.shape)
                out.append((float(e[mi, ai]), w0, float(as_[ai]), float(ms[mi])))
        out.extend(cands)
        out.sort(key=lambda c: c[0])
        return out

    ratio = float(np.exp(np.log(wa_hi / max(lo_pos, 0.25)) / (_N_WA - 1))) if wa_hi > lo_pos else 1.0
    cands = refine(candidates[:_N_REFINE], 1.2 * _WM_STEP, 1e-3, ratio * 1.05, 61)
    cands = refine(cands[:8], 1.5e-3, 5e-5, 1.01, 61)
    best_err, w0, wa, wm = cands[0]

    # Prefer the paper's 2-decimal parameters when they fit as well.
    wa_r, wm_r = round(wa, 2), round(wm, 2)
    if wa_lo <= wa_r <= wa_hi and wm_lo <= wm_r <= wm_hi and wm_r > 1:
        e_r = float(grid.errors(w0, np.array([wa_r]), np.array([wm_r]))[0, 0])
        if e_r <= best_err + 1e-12:
            wa, wm, best_err = wa_r, wm_r, e_r
    return RegNetFit(float(w0), float(wa), float(wm), float(best_err))
