"""The study's report: verdicts on the paper's claims, report.md, summary.json and the figures.

Pure numbers in, files out: `summarize` turns each space's errors and flops
into per-space statistics, EDF values and the paper's pairwise comparisons
(the statistics themselves are in `keras_regnet.analysis`); `verdict` words a
comparison honestly (agree only when significant in the paper's direction);
`write_report` writes ``report.md``, ``summary.json`` and the PNG figures.
No TensorFlow.
"""

import functools
import json
import math
import os

import numpy as np

from keras_regnet import analysis, run_folder

ALPHA = 0.05  # significance level of the verdicts

# (space a, space b, what the paper found, the paper's expectation for b vs a)
PAPER_PAIRS = (
    ("AnyNetX_A", "AnyNetX_B", "sharing one bottleneck ratio b across stages costs no accuracy", "same"),
    ("AnyNetX_B", "AnyNetX_C", "sharing one group width g across stages costs no accuracy", "same"),
    ("AnyNetX_C", "AnyNetX_D", "non-decreasing widths lower the error", "better"),
    ("AnyNetX_D", "AnyNetX_E", "non-decreasing depths lower the error", "better"),
    ("AnyNetX_E", "RegNet", "RegNet's distribution of errors is better than AnyNetX_E's", "better"),
)

FIGURES = {
    "panels": "edf_panels.png",
    "edfs": "edfs.png",
    "flops": "error_vs_flops.png",
    "staircase": "width_staircase.png",
    "proxy": "proxy_check.png",
}


def window_text(window):
    """A flop window as the --flops flag spells it: (5e5, 2e6) -> '0.5M:2M'."""
    if window is None:
        return "none"
    lo, hi = window
    return f"{lo / 1e6:g}M:{'' if hi is None or math.isinf(hi) else f'{hi / 1e6:g}M'}"


def per_block_widths(row):
    """The per-block widths of a trial row (each stage's width repeated depth times)."""
    widths, i = [], 1
    while f"depth_{i}" in row and row[f"depth_{i}"] not in ("", None):
        widths += [int(float(row[f"width_{i}"]))] * int(float(row[f"depth_{i}"]))
        i += 1
    return widths


def _bins(errors_by_space):
    """Shared complexity bins: ~5 models per bin and space, between 1 and 10 bins."""
    smallest = min(len(e) for e in errors_by_space.values())
    return max(1, min(10, smallest // 5))


def _sup_difference(curve_a, curve_b, points):
    """max(F_b - F_a) and max(F_a - F_b) over `points` (strict EDFs, both sides of each jump)."""
    at = np.concatenate([points, np.nextafter(points, np.inf)])
    diff = curve_b(at) - curve_a(at)
    return float(max(diff.max(), 0.0)), float(max((-diff).max(), 0.0))


def verdict(expect, ks_p, lower, n_a, n_b, alpha=ALPHA):
    """Honest wording of one comparison: agree only when significant in the paper's direction."""
    sig = ks_p < alpha
    smallest = analysis.minimum_detectable_d(n_a, n_b, alpha)
    caveat = (
        f"n={n_a} vs {n_b}: no KS D is significant at p<{alpha} with so few models"
        if smallest is None
        else f"n={n_a} vs {n_b}: only KS D >= {smallest:.2f} is detectable at p<{alpha} (exact test)"
    )
    if expect == "same":
        if not sig:
            return "consistent", f"no significant difference (p={ks_p:.2g}), as in the paper; {caveat}"
        if lower == "b":
            return "agrees", f"no loss: the constrained space is even significantly better (p={ks_p:.2g})"
        return "disagrees", f"the constrained space is significantly worse (p={ks_p:.2g})"
    if sig and lower == "b":
        return "agrees", f"significantly better, as in the paper (p={ks_p:.2g})"
    if sig:
        return "disagrees", f"significantly worse, unlike the paper (p={ks_p:.2g})"
    leaning = "the paper's" if lower == "b" else "the opposite"
    return "inconclusive", f"no significant difference (p={ks_p:.2g}; the EDFs lean {leaning} way); {caveat}"


def summarize(errors_by_space, flops_by_space, pairs=PAPER_PAIRS, alpha=ALPHA):
    """Per-space statistics, EDF values at shared error levels, and the paper's pairwise comparisons.

    Pure numbers (no TensorFlow): the unit of `report.md` and `summary.json`.
    Spaces with no errors are left out. Normalized EDFs weight models by
    flops over shared log-spaced bins (the common range of all spaces).
    """
    errs = {k: np.asarray(v, dtype=float) for k, v in errors_by_space.items() if len(v)}
    flops = {k: np.asarray(flops_by_space[k], dtype=float) for k in errs}
    if not errs:
        raise ValueError("no completed trials to summarize")
    bins = _bins(errs)
    crange = (min(float(f.min()) for f in flops.values()), max(float(f.max()) for f in flops.values()))
    pooled = np.concatenate(list(errs.values()))
    levels = sorted({round(float(q), 4) for q in np.quantile(pooled, [0.25, 0.5, 0.75])})
    weights = {k: analysis.complexity_weights(flops[k], bins, complexity_range=crange) for k in errs}
    spaces = {}
    for k, e in errs.items():
        spaces[k] = {
            "n": int(e.size),
            "min": float(e.min()),
            "median": float(np.median(e)),
            "mean": float(e.mean()),
            "normalized_mean": float(np.sum(weights[k] * e)),
            "flops_min": float(flops[k].min()),
            "flops_max": float(flops[k].max()),
            "edf": [float(v) for v in analysis.edf(e, at=levels)],
            "normalized_edf": [
                float(v) for v in analysis.normalized_edf(e, flops[k], bins, at=levels, complexity_range=crange)
            ],
        }
    comparisons = []
    for a, b, finding, expect in pairs:
        if a not in errs or b not in errs:
            continue
        ks = analysis.ks_test(errs[a], errs[b])
        grid = np.unique(np.concatenate([errs[a], errs[b]]))
        b_lower, a_lower = _sup_difference(
            functools.partial(analysis.edf, errs[a]), functools.partial(analysis.edf, errs[b]), grid
        )
        nb_lower, na_lower = _sup_difference(
            functools.partial(analysis.normalized_edf, errs[a], flops[a], bins, complexity_range=crange),
            functools.partial(analysis.normalized_edf, errs[b], flops[b], bins, complexity_range=crange),
            grid,
        )
        lower = "b" if b_lower > a_lower else ("a" if a_lower > b_lower else "tie")
        outcome, detail = verdict(expect, ks.pvalue, lower, errs[a].size, errs[b].size, alpha)
        comparisons.append(
            {
                "a": a,
                "b": b,
                "paper": finding,
                "expect": expect,
                "ks_d": ks.statistic,
                "ks_p": ks.pvalue,
                "lower_errors": {"b": b, "a": a}.get(lower, "tie"),
                "normalized_d": max(nb_lower, na_lower),
                "median_a": spaces[a]["median"],
                "median_b": spaces[b]["median"],
                "verdict": outcome,
                "detail": detail,
            }
        )
    return {
        "bins": bins,
        "flops_range": list(crange),
        "error_levels": levels,
        "alpha": alpha,
        "spaces": spaces,
        "comparisons": comparisons,
    }


def proxy_summary(rows, short_epochs, epochs):
    """The proxy check's k, epochs and Spearman rank correlation of short and long errors."""
    short = [float(r["short_error"]) for r in rows]
    long = [float(r["long_error"]) for r in rows]
    rho, p = analysis.spearman(short, long)
    return {"k": len(rows), "short_epochs": short_epochs, "epochs": epochs, "spearman": rho, "p": p, "rows": rows}


def make_figures(out, trials, stats, proxy=None, best=3):
    """The PNGs (file name -> path); figures needing two spaces are skipped with one."""
    errs = {k: [r["val_error"] for r in v] for k, v in trials.items() if v}
    flops = {k: [r["flops"] for r in v] for k, v in trials.items() if v}
    paths, bins = {}, stats["bins"]
    pairs = [(c["a"], c["b"]) for c in stats["comparisons"]]
    if pairs:
        paths["panels"] = analysis.plot_edf_panels(
            errs,
            os.path.join(out, FIGURES["panels"]),
            pairs=pairs,
            complexity_by_space=flops,
            bins=bins,
            title="Complexity-normalized error EDFs (KS on the raw errors)",
        )
    paths["edfs"] = analysis.plot_edfs(
        errs,
        os.path.join(out, FIGURES["edfs"]),
        title="Complexity-normalized error EDFs",
        complexity_by_space=flops,
        bins=bins,
    )
    paths["flops"] = analysis.plot_error_vs_flops(errs, flops, os.path.join(out, FIGURES["flops"]))
    top = sorted(((r["val_error"], k, r) for k, v in trials.items() for r in v), key=lambda t: t[:2])[:best]
    widths = [per_block_widths(r) for _, _, r in top]
    w0_high = max(256, max(w[0] for w in widths))
    paths["staircase"] = analysis.plot_width_staircase(
        widths,
        os.path.join(out, FIGURES["staircase"]),
        labels=[f"{k} #{r['trial_id']} err {e:.3f}" for e, k, r in top],
        title=f"Per-block widths of the {len(top)} best models, with the RegNet fit",
        w_0_range=(8, w0_high),
    )
    if proxy:
        paths["proxy"] = _plot_proxy(proxy, os.path.join(out, FIGURES["proxy"]))
    return paths


def _plot_proxy(proxy, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    short = [float(r["short_error"]) for r in proxy["rows"]]
    long = [float(r["long_error"]) for r in proxy["rows"]]
    ax.scatter(short, long, s=18)
    ax.set_xlabel(f"error after {proxy['short_epochs']} epochs (study)")
    ax.set_ylabel(f"error after {proxy['epochs']} epochs")
    ax.set_title(f"Proxy check: Spearman rho={proxy['spearman']:.2f} (p={proxy['p']:.2g}, k={proxy['k']})")
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=120)
    return path


def write_report(out, trials, settings, proxy=None):
    """OUT/report.md, OUT/summary.json and the figures from the completed trials; returns the summary."""
    errs = {k: [r["val_error"] for r in v] for k, v in trials.items()}
    flops = {k: [r["flops"] for r in v] for k, v in trials.items()}
    stats = summarize(errs, flops)
    figures = make_figures(out, {k: v for k, v in trials.items() if v}, stats, proxy)
    summary = {
        "settings": settings,
        **stats,
        "proxy_check": proxy,
        "figures": {k: os.path.basename(p) for k, p in figures.items()},
        "missing": [k for k, v in trials.items() if not v],
    }
    run_folder.write_text(os.path.join(out, "summary.json"), json.dumps(summary, indent=2, default=float) + "\n")
    run_folder.write_text(os.path.join(out, "report.md"), render_report(summary))
    return summary


def render_report(summary):
    """report.md text from a summary dict."""
    s, st = summary["settings"], summary["spaces"]
    lines = [
        "# Design-space study",
        "",
        f"{s['samples']} networks sampled per space (random sampling, never Hyperband) in the flop window "
        f"{window_text(s['flops'])} at {s['image_size']}x{s['image_size']}, each trained {s['epochs']} epochs "
        f"(batch {s['batch_size']}, peak lr {s['lr']}, warm-up + cosine) on `{s['dataset']}`; error = "
        f"final-epoch validation error. Seed {s['seed']}.",
        "",
        "| space | n | min | median | mean | normalized mean | flops range |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, v in st.items():
        lines.append(
            f"| {name} | {v['n']} | {v['min']:.4f} | {v['median']:.4f} | {v['mean']:.4f} | "
            f"{v['normalized_mean']:.4f} | {v['flops_min'] / 1e6:.2f}M - {v['flops_max'] / 1e6:.2f}M |"
        )
    for name in summary.get("missing", []):
        lines.append(f"| {name} | 0 | - | - | - | - | - |")
    levels = summary["error_levels"]
    binning = (
        f"models weighted so each of {summary['bins']} shared log-flops bins counts equally"
        if summary["bins"] > 1
        else "too few models to bin by flops, so equal to the plain EDF"
    )
    lines += [
        "",
        f"Error EDF F(e) = fraction of models with error < e (normalized: {binning}):",
        "",
        "| space | "
        + " | ".join(f"F({e:g})" for e in levels)
        + " | "
        + " | ".join(f"normalized F({e:g})" for e in levels)
        + " |",
        "|---|" + "---:|" * (2 * len(levels)),
    ]
    for name, v in st.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{x:.3f}" for x in v["edf"])
            + " | "
            + " | ".join(f"{x:.3f}" for x in v["normalized_edf"])
            + " |"
        )
    lines += [
        "",
        "## The paper's comparisons",
        "",
        f"Two-sample Kolmogorov-Smirnov test on the raw errors (significance level {summary['alpha']}); "
        "'lower errors' is the space whose EDF lies above at the largest gap; normalized D is the largest "
        "gap between the complexity-normalized EDFs.",
        "",
        "| comparison | paper found | KS D | p | lower errors | normalized D | this run |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for c in summary["comparisons"]:
        lines.append(
            f"| {c['a']} vs {c['b']} | {c['paper']} | {c['ks_d']:.3f} | {c['ks_p']:.3g} | "
            f"{c['lower_errors']} | {c['normalized_d']:.3f} | **{c['verdict']}**: {c['detail']} |"
        )
    if not summary["comparisons"]:
        lines.append("| - | (needs both spaces of a pair) | | | | | |")
    proxy = summary.get("proxy_check")
    if proxy:
        short_epochs = proxy["short_epochs"]
        lines += [
            "",
            "## Proxy check",
            "",
            f"{proxy['k']} study models retrained for {proxy['epochs']} epochs "
            f"({proxy['epochs'] // short_epochs}x): Spearman "
            f"rank correlation between the {short_epochs}-epoch and {proxy['epochs']}-epoch errors "
            f"rho = {proxy['spearman']:.3f} (p = {proxy['p']:.3g}). The paper assumes short training ranks "
            "networks as long training does; a rho near 1 supports that on this data.",
            "",
            "| space | trial | flops | short error | long error |",
            "|---|---|---:|---:|---:|",
        ]
        for r in proxy["rows"]:
            lines.append(
                f"| {r['space']} | {r['trial_id']} | {int(float(r['flops'])) / 1e6:.2f}M | "
                f"{float(r['short_error']):.4f} | {float(r['long_error']):.4f} |"
            )
    titles = {
        "panels": "EDF panels (the paper's pairs)",
        "edfs": "All spaces",
        "flops": "Error vs flops",
        "staircase": "Widths of the best models",
        "proxy": "Proxy check",
    }
    lines += ["", "## Figures", ""]
    for key, name in summary["figures"].items():
        lines += [f"### {titles[key]}", "", f"![{titles[key]}]({name})", ""]
    lines += [
        "## Caveats",
        "",
        "- Small samples: the paper used ~500 models per space; with the n above only large "
        "distribution shifts are significant, so 'inconclusive' is not evidence of no effect.",
        "- Short training and a small validation set make each error noisy (the proxy check measures "
        "how well short errors rank networks here).",
        "",
    ]
    return "\n".join(lines)
