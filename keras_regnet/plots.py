"""Figures of a design-space study: error EDFs, error vs complexity and design parameters, width staircases.

The statistics come from :mod:`keras_regnet.analysis`; this module only draws
them, in the layout of Radosavovic et al.'s figures, sized to be read at the
size they are saved (fonts of 9 pt or more at 120 dpi, legends outside the
data, panels wrapped into rows of at most a few).

It draws on :class:`matplotlib.figure.Figure` objects directly, never through
``pyplot``: no global figure state is created and no backend is switched, so
it is safe to use from notebooks, servers and tests alike. No TensorFlow.
"""

from __future__ import annotations

import functools
import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from keras_regnet import analysis
from keras_regnet.analysis import _as_1d_float, _as_complexity, _as_errors, _check_same_length, _is_scalar
from keras_regnet.specs import quantized_widths
from keras_regnet.validation import check_int

__all__ = [
    "DEFAULT_PANEL_PAIRS",
    "SPACE_ORDER",
    "plot_edfs",
    "plot_edf_panels",
    "plot_error_vs_flops",
    "plot_error_vs_params",
    "plot_rank_agreement",
    "plot_width_staircase",
]

#: The pairs compared in the CVPR 2020 paper's AnyNetX figure (one panel each).
DEFAULT_PANEL_PAIRS = (
    ("AnyNetX_A", "AnyNetX_B"),
    ("AnyNetX_B", "AnyNetX_C"),
    ("AnyNetX_C", "AnyNetX_D"),
    ("AnyNetX_D", "AnyNetX_E"),
)

#: Spaces get the same colour in every figure: C0.. in this order, other names after them.
SPACE_ORDER = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")

_PLOT_FORMATS = ("png", "pdf", "svg")
_MAX_COLUMNS = 3  # EDF panels per row
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
}


def _styled(plot):
    """Draw (and save) under the module's font sizes, whatever the caller's rcParams."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        from matplotlib import rc_context

        with rc_context(_STYLE):
            return plot(*args, **kwargs)

    return wrapper


def _new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _save(fig, path, dpi) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__}.")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    if fmt not in _PLOT_FORMATS:
        raise ValueError(f"`path` must end in one of {_PLOT_FORMATS} (or have no suffix), got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format=fmt, dpi=dpi)
    finally:
        fig.clear()
    return path


def _wrap(text, width_in, points=11):
    """`text` wrapped to lines that fit `width_in` inches at `points` pt (about 0.55 em a character)."""
    return "\n".join(textwrap.wrap(str(text), max(20, int(width_in * 72 / (0.55 * points))))) if text else text


def _check_mapping(m, name: str) -> Mapping:
    if not isinstance(m, Mapping):
        raise TypeError(f"`{name}` must be a dict mapping space name -> sequence, got {type(m).__name__}.")
    if len(m) == 0:
        raise ValueError(f"`{name}` must not be empty.")
    return m


def space_colors(names):
    """name -> matplotlib colour, stable across figures (SPACE_ORDER first, then the others in order)."""
    order = list(SPACE_ORDER) + [n for n in names if n not in SPACE_ORDER]
    return {n: f"C{order.index(n) % 10}" for n in names}


def _label(name, errors: np.ndarray) -> str:
    return f"{name} (n={errors.size}, min {errors.min():.3g}, median {np.median(errors):.3g})"


def _errors_and_complexity(errors_by_space, complexity_by_space):
    errs = {str(k): _as_errors(v, f"errors_by_space[{k!r}]") for k, v in errors_by_space.items()}
    if complexity_by_space is None:
        return errs, None
    _check_mapping(complexity_by_space, "complexity_by_space")
    comps = {}
    for k in errors_by_space:
        if k not in complexity_by_space:
            raise ValueError(f"`complexity_by_space` has no entry for space {k!r}.")
        c = _as_complexity(complexity_by_space[k], f"complexity_by_space[{k!r}]")
        _check_same_length(errs[str(k)], c, f"errors_by_space[{k!r}]", f"complexity_by_space[{k!r}]")
        comps[str(k)] = c
    return errs, comps


def _draw_edf(ax, errors, complexity, bins, log_bins, complexity_range, **kw):
    if complexity is None:
        curve = analysis.edf(errors)
    else:
        curve = analysis.normalized_edf(
            errors, complexity, bins=bins, log_bins=log_bins, complexity_range=complexity_range
        )
    x = np.concatenate([[curve.errors[0]], curve.errors])
    y = np.concatenate([[0.0], curve.fractions])
    ax.plot(x, y, drawstyle="steps-post", **kw)


def _common_range(comps):
    if comps is None:
        return None
    lo = min(float(c.min()) for c in comps.values())
    hi = max(float(c.max()) for c in comps.values())
    return (lo, hi)


def _style_edf_axis(ax, normalized, xlabel, xlim):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative prob." + (" (normalized)" if normalized else ""))
    ax.set_ylim(0.0, 1.0)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.grid(True, alpha=0.3)


@_styled
def plot_edfs(
    errors_by_space,
    path,
    title="Error EDF",
    *,
    complexity_by_space=None,
    bins=10,
    log_bins=True,
    xlabel="error",
    xlim=None,
    dpi=120,
):
    """Plot the error EDFs of several design spaces on one axis.

    Args:
        errors_by_space: dict ``name -> errors``.
        path: output file (PNG by default; ``.pdf``/``.svg`` also accepted);
            parent directories are created.
        title: figure title (wrapped to the figure's width).
        complexity_by_space: optional dict ``name -> complexities``; when
            given, complexity-normalized EDFs are drawn, binned over the
            common complexity range of all spaces.
        bins, log_bins: binning of the normalized EDF.
        xlabel, xlim: x axis label and optional limits.

    Returns:
        The :class:`pathlib.Path` written. The legend (below the axis) shows
        each space's n, min and mean error.
    """
    _check_mapping(errors_by_space, "errors_by_space")
    errs, comps = _errors_and_complexity(errors_by_space, complexity_by_space)
    crange = _common_range(comps)
    colors = space_colors(list(errs))
    fig = _new_figure((8.2, 4.6 + 0.2 * math.ceil(len(errs) / 2)))
    ax = fig.add_subplot()
    for name, e in errs.items():
        _draw_edf(
            ax,
            e,
            None if comps is None else comps[name],
            bins,
            log_bins,
            crange,
            label=_label(name, e),
            linewidth=1.8,
            color=colors[name],
        )
    _style_edf_axis(ax, comps is not None, xlabel, xlim)
    ax.set_title(_wrap(title, 7.8, 10))
    fig.legend(loc="outside lower center", ncols=2 if len(errs) > 1 else 1)
    return _save(fig, path, dpi)


def _check_pairs(pairs, errs):
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise TypeError(f"`pairs` must be a sequence of (name_a, name_b) pairs, got {pairs!r}.")
    valid = []
    for p in pairs:
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
            raise ValueError(f"each entry of `pairs` must be a (name_a, name_b) pair, got {p!r}.")
        a, b = str(p[0]), str(p[1])
        if a in errs and b in errs:
            valid.append((a, b))
    if not valid:
        raise ValueError(
            f"none of `pairs` {list(pairs)!r} has both spaces in `errors_by_space` (available: {sorted(errs)!r})."
        )
    return valid


@_styled
def plot_edf_panels(
    errors_by_space,
    path,
    pairs=DEFAULT_PANEL_PAIRS,
    *,
    complexity_by_space=None,
    bins=10,
    log_bins=True,
    title=None,
    xlabel="error",
    xlim=None,
    dpi=120,
):
    """One EDF panel per pair of design spaces, as in the CVPR 2020 figures.

    Pairs naming a space absent from ``errors_by_space`` are skipped; if none
    is left a ``ValueError`` is raised.  Panels fill rows of at most three;
    each is titled ``"A vs B"`` with the KS statistic and p-value of the two
    samples, has its legend below it, shares the y axis with the others and
    uses a common x range. The figure title is wrapped to the figure's width.

    Returns:
        The :class:`pathlib.Path` written.
    """
    _check_mapping(errors_by_space, "errors_by_space")
    errs, comps = _errors_and_complexity(errors_by_space, complexity_by_space)
    valid = _check_pairs(pairs, errs)
    crange = _common_range(comps)
    if xlim is None:
        used = np.concatenate([errs[n] for pair in valid for n in pair])
        pad = 0.02 * (used.max() - used.min() or 1.0)
        xlim = (used.min() - pad, used.max() + pad)
    colors = space_colors(sorted({n for pair in valid for n in pair}, key=list(errs).index))
    ncols = min(_MAX_COLUMNS, len(valid))
    nrows = math.ceil(len(valid) / ncols)
    width = 4.3 * ncols
    fig = _new_figure((width, 4.3 * nrows + (0.5 if title else 0.0)))
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, (a, b) in zip(axes, valid):
        for name, style in ((a, "-"), (b, "--")):
            e = errs[name]
            _draw_edf(
                ax,
                e,
                None if comps is None else comps[name],
                bins,
                log_bins,
                crange,
                label=f"{name} (n={e.size}, median {np.median(e):.3g})",
                linestyle=style,
                linewidth=1.8,
                color=colors[name],
            )
        ks = analysis.ks_test(errs[a], errs[b])
        ax.set_title(f"{a} vs {b}\nKS D={ks.statistic:.3f}, p={ks.pvalue:.2g}")
        _style_edf_axis(ax, comps is not None, xlabel, xlim)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1, frameon=False)
    for i, ax in enumerate(axes):
        if i >= len(valid):
            ax.set_visible(False)
        elif i % ncols:
            ax.set_ylabel("")
    if title:
        fig.suptitle(_wrap(title, width))
    return _save(fig, path, dpi)


def _flops_formatter(hi):
    """Tick labels in one unit chosen by the axis' top: G from 1e9, M from 1e5 (0.6M, 1.2M), else K."""
    from matplotlib.ticker import FuncFormatter

    scale, unit = next(((sc, u) for sc, u in ((1e9, "G"), (1e5, "M"), (1e3, "K")) if hi >= sc), (1.0, ""))
    scale = 1e6 if unit == "M" else scale
    return FuncFormatter(lambda x, _pos=None: f"{x / scale:.4g}{unit}")


def _padded(lo, hi, log):
    if log:
        return lo / 1.08, hi * 1.08
    pad = 0.04 * ((hi - lo) or hi)
    return lo - pad, hi + pad


def _flops_axis(ax, lo, hi):
    """Readable complexity ticks: plain ticks in M/G when the range spans under a decade, else log."""
    from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

    if hi < 10 * lo:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    else:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(_flops_formatter(hi))


def _failed_limits(ax, all_errors, fail_above):
    """Clip the y axis below `fail_above` (failed trainings are drawn on its top edge); returns the top."""
    kept = all_errors[all_errors <= fail_above] if fail_above is not None else all_errors
    if fail_above is None or kept.size == all_errors.size:
        return None
    lo = float(kept.min()) if kept.size else 0.0
    hi = float(kept.max()) if kept.size else float(fail_above)
    pad = 0.06 * ((hi - lo) or max(hi, 1e-3))
    top = hi + 2 * pad
    ax.set_ylim(lo - pad, top)
    return top


def _scatter_errors(ax, x, e, top, color, label=None, size=14):
    """Points of one space; errors above the axis (failed trainings) as x marks on its top edge."""
    e = np.asarray(e, dtype=float)
    x = np.asarray(x, dtype=float)
    ok = e <= top if top is not None else np.ones(e.size, bool)
    ax.scatter(x[ok], e[ok], s=size, alpha=0.7, color=color, label=label, linewidths=0)
    if (~ok).any():
        ax.scatter(x[~ok], np.full((~ok).sum(), top), s=size * 1.6, marker="x", color=color, clip_on=False)


@_styled
def plot_error_vs_flops(
    errors_by_space,
    flops_by_space,
    path,
    title="Error vs. complexity",
    *,
    xlabel="flops (multiply-adds)",
    ylabel="error",
    fail_above=None,
    dpi=120,
):
    """Scatter of error against complexity, one colour per space, legend below the axis.

    The x axis has plain ticks (in K/M/G) when the flops span less than a
    decade, log ticks at 1-2-5 otherwise. With ``fail_above``, errors above
    it (failed trainings) are drawn as x marks on the top edge so that they
    do not squeeze the others.

    Returns:
        The :class:`pathlib.Path` written.
    """
    _check_mapping(errors_by_space, "errors_by_space")
    _check_mapping(flops_by_space, "flops_by_space")
    errs, flops = _errors_and_complexity(errors_by_space, flops_by_space)
    colors = space_colors(list(errs))
    fig = _new_figure((8.2, 4.8 + 0.2 * math.ceil(len(errs) / 2)))
    ax = fig.add_subplot()
    top = _failed_limits(ax, np.concatenate(list(errs.values())), fail_above)
    for name, e in errs.items():
        _scatter_errors(ax, flops[name], e, top, colors[name], label=_label(name, e), size=18)
    lo, hi = _common_range(flops)
    _flops_axis(ax, lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if top is not None:
        title = f"{title} (x on the top edge: failed, error > {fail_above:g})"
    ax.set_title(_wrap(title, 7.8, 10))
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2 if len(errs) > 1 else 1, markerscale=1.5)
    ax.set_xlim(*_padded(lo, hi, ax.get_xscale() == "log"))
    return _save(fig, path, dpi)


def _number(value):
    """A float from a CSV cell or a number; None for blanks and text."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _stage_keys(rows, prefix):
    i, keys = 1, []
    while any(_number(r.get(f"{prefix}_{i}")) is not None for r in rows):
        keys.append(f"{prefix}_{i}")
        i += 1
    return keys


def _total_depth(row):
    depths, i = [], 1
    while _number(row.get(f"depth_{i}")) is not None:
        depths.append(_number(row[f"depth_{i}"]))
        i += 1
    return sum(depths) if depths else _number(row.get("depth"))


_PARAM_LABELS = {"depth": "total depth d", "w_0": "w_0", "w_a": "w_a", "w_m": "w_m"}


def _param_label(key):
    if key in _PARAM_LABELS:
        return _PARAM_LABELS[key]
    name, stage = key.rsplit("_", 1)
    short = {"depth": "depth d", "width": "width w", "group_width": "group width g", "bottleneck_ratio": "bottleneck b"}
    return f"{short.get(name, name)}, stage {stage}"


def _binned_trend(x, y, bins):
    """(x, y) of the median error per quantile bin of x (one bin per value when x has few values)."""
    values = np.unique(x)
    if values.size <= bins:
        groups = [x == v for v in values]
    else:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
        groups = [idx == k for k in range(edges.size - 1)]
    pts = [(float(np.median(x[g])), float(np.median(y[g]))) for g in groups if g.any()]
    return np.array(pts).T


@_styled
def plot_error_vs_params(
    rows_by_space,
    path,
    *,
    error_key="val_error",
    fail_above=None,
    bins=6,
    title="Error vs. design parameters (line: median error per quantile bin, all spaces)",
    dpi=120,
):
    """Validation error against each design parameter, one small panel per parameter.

    The way the paper finds good ranges: total depth, each stage's depth,
    width, group width and bottleneck ratio, and RegNet's ``w_0``, ``w_a``,
    ``w_m`` where the rows carry them (a parameter with a single value in
    every row is left out). Points are coloured by space; the black line is
    the median error in each of ``bins`` quantile bins of the parameter over
    all spaces (one bin per value when it takes few). Width-like parameters
    spanning 4x or more get a log2 axis. With ``fail_above``, failed
    trainings are drawn as x marks on each panel's top edge.

    Args:
        rows_by_space: dict ``space -> list of trial rows`` (dicts whose
            ``depth_1``, ``width_1``, ... and ``error_key`` are numbers or
            numeric strings, as read from a CSV).
        path: output file.

    Returns:
        The :class:`pathlib.Path` written.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    _check_mapping(rows_by_space, "rows_by_space")
    bins = check_int("`bins`", bins, 1)
    rows = {str(k): [r for r in v if _number(r.get(error_key)) is not None] for k, v in rows_by_space.items()}
    rows = {k: v for k, v in rows.items() if v}
    if not rows:
        raise ValueError(f"`rows_by_space` has no row with a numeric {error_key!r}.")
    every = [r for v in rows.values() for r in v]
    keys = ["depth"]
    for prefix in ("depth", "width", "group_width", "bottleneck_ratio"):
        keys += _stage_keys(every, prefix)
    keys += ["w_0", "w_a", "w_m"]
    panels = []
    for key in keys:
        get = _total_depth if key == "depth" else (lambda r, key=key: _number(r.get(key)))
        points = {}
        for name, v in rows.items():
            pairs = [(get(r), _number(r[error_key])) for r in v]
            points[name] = np.array([p for p in pairs if p[0] is not None], dtype=float).reshape(-1, 2)
        xs = np.concatenate([p[:, 0] for p in points.values()])
        if xs.size >= 2 and np.unique(xs).size >= 2:
            panels.append((key, points))
    if not panels:
        raise ValueError("`rows_by_space` has no design parameter that varies across rows.")
    colors = space_colors(list(rows))
    ncols = min(5, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = 2.7 * ncols
    fig = _new_figure((max(width, 5.0), 2.5 * nrows + 0.9))
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    all_errors = np.array([_number(r[error_key]) for r in every])
    for ax, (key, points) in zip(axes, panels):
        top = _failed_limits(ax, all_errors, fail_above)
        for name, p in points.items():
            if p.size:
                _scatter_errors(ax, p[:, 0], p[:, 1], top, colors[name], size=10)
        pooled = np.concatenate([p for p in points.values() if p.size])
        kept = pooled if fail_above is None else pooled[pooled[:, 1] <= fail_above]
        if kept.size:
            tx, ty = _binned_trend(kept[:, 0], kept[:, 1], bins)
            ax.plot(tx, ty, color="black", linewidth=1.6, marker="o", markersize=3)
        if key.startswith(("depth", "group_width")):
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        if key.startswith(("width", "group_width", "w_0", "w_a")) and pooled[:, 0].min() > 0:
            if pooled[:, 0].max() >= 4 * pooled[:, 0].min():
                ax.set_xscale("log", base=2)
                ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos=None: f"{x:g}"))
        ax.set_xlabel(_param_label(key))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.supylabel(error_key.replace("_", " "), fontsize=10)
    handles = [Line2D([], [], linestyle="", marker="o", color=colors[n], label=f"{n} (n={len(rows[n])})") for n in rows]
    trend = "median per bin" if fail_above is None else f"median per bin (error <= {fail_above:g})"
    handles.append(Line2D([], [], color="black", marker="o", markersize=3, label=trend))
    if fail_above is not None and (all_errors > fail_above).any():
        handles.append(Line2D([], [], linestyle="", marker="x", color="gray", label=f"failed (> {fail_above:g})"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4))
    fig.suptitle(_wrap(title, max(width, 5.0)))
    return _save(fig, path, dpi)


@_styled
def plot_rank_agreement(x, y, path, *, xlabel, ylabel, title, groups=None, identity=False, dpi=120):
    """Scatter of two errors of the same networks (seed vs seed, short vs long training).

    Args:
        x, y: 1-D sequences of errors, one pair per network.
        groups: optional space name per network (coloured as in the other figures).
        identity: draw the line y = x (for two trainings of the same length).

    Returns:
        The :class:`pathlib.Path` written.
    """
    x = _as_1d_float(x, "x")
    y = _as_1d_float(y, "y")
    _check_same_length(x, y, "x", "y")
    fig = _new_figure((5.6, 5.2))
    ax = fig.add_subplot()
    if groups is None:
        ax.scatter(x, y, s=22)
    else:
        groups = [str(g) for g in groups]
        _check_same_length(x, groups, "x", "groups")
        colors = space_colors(list(dict.fromkeys(groups)))
        for name in colors:
            mask = np.array([g == name for g in groups])
            ax.scatter(x[mask], y[mask], s=22, color=colors[name], label=name)
        fig.legend(loc="outside lower center", ncols=min(3, len(colors)))
    if identity:
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="gray", linestyle=":", linewidth=1, label=None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, 5.2, 10))
    ax.grid(True, alpha=0.3)
    return _save(fig, path, dpi)


@_styled
def plot_width_staircase(
    widths_per_block_list,
    path,
    labels=None,
    *,
    title="Per-block widths and quantized linear fit",
    q=8,
    dpi=120,
    **fit_kwargs,
):
    """Per-block width "staircase" of models with their RegNet fit overlaid.

    For each model the observed widths are drawn as a solid staircase and the
    :func:`keras_regnet.analysis.fit_regnet` quantized widths as a dashed one
    (plus the continuous line ``u_j = w_0 + w_a j`` dotted); the legend, below
    the axis, gives the fitted ``w_0, w_a, w_m`` and ``e_fit``. The y axis is log2.

    Args:
        widths_per_block_list: a list of per-block width sequences (a single
            flat sequence of numbers is taken as one model).
        path: output file.
        labels: optional names, one per model (default ``"model i"``).
        q, **fit_kwargs: passed to :func:`keras_regnet.analysis.fit_regnet`.

    Returns:
        The :class:`pathlib.Path` written.
    """
    if isinstance(widths_per_block_list, (str, bytes, Mapping)) or not isinstance(
        widths_per_block_list, (Sequence, np.ndarray)
    ):
        raise TypeError("`widths_per_block_list` must be a list of per-block width sequences.")
    models = list(widths_per_block_list)
    if not models:
        raise ValueError("`widths_per_block_list` must not be empty.")
    if all(_is_scalar(m) for m in models):
        models = [models]
    models = [analysis._validate_widths(m, f"widths_per_block_list[{i}]") for i, m in enumerate(models)]
    if labels is None:
        labels = [f"model {i}" for i in range(len(models))]
    else:
        labels = [str(x) for x in labels]
        if len(labels) != len(models):
            raise ValueError(
                f"`labels` must have one entry per model: got {len(labels)} labels for {len(models)} models."
            )
    from matplotlib.ticker import ScalarFormatter

    fig = _new_figure((7.2, 4.6 + 0.45 * len(models)))
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(models))]
    for ws, label, color in zip(models, labels, colors):
        fit = analysis.fit_regnet(ws, q=q, **fit_kwargs)
        j = np.arange(ws.size)
        fitted = quantized_widths(fit.w_0, fit.w_a, fit.w_m, ws.size, q)
        ax.plot(
            j, ws, drawstyle="steps-mid", color=color, linewidth=2.0, label=f"{label} (d={ws.size}, max w={ws.max():g})"
        )
        ax.plot(
            j,
            fitted,
            drawstyle="steps-mid",
            color=color,
            linestyle="--",
            linewidth=1.2,
            label=(f"fit: w0={fit.w_0:g}, wa={fit.w_a:.2f}, wm={fit.w_m:.2f}, e_fit={fit.fit_error:.3f}"),
        )
        ax.plot(j, fit.w_0 + fit.w_a * j, color=color, linestyle=":", linewidth=0.8, alpha=0.7)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("block index j")
    ax.set_ylabel("width w_j (log scale)")
    ax.set_title(_wrap(title, 6.8, 10))
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=1)
    return _save(fig, path, dpi)
