"""The study's report: can its errors rank networks, verdicts on the paper's claims, report.md, summary.json, figures.

Pure numbers in, files out: `summarize` turns each space's errors and flops
into per-space statistics (failed trainings counted), EDF values and the
paper's pairwise comparisons with bootstrap intervals of their effect sizes
(the statistics themselves are in `keras_regnet.analysis`); `verdict` words a
comparison honestly (agree only when significant in the paper's direction);
`seed_check_summary` / `proxy_summary` / `rank_check` say whether the errors
rank networks at all (two trainings with different seeds, short vs long
training, and the case of `keras_regnet.study_checks`: does long training
itself rank networks here?), and every verdict carries that answer; the
headline comparison retested at long training (`--confirm`) overrides it for
that comparison when it holds or reverses; `write_report` writes
``report.md``, ``summary.json`` and the PNG figures (drawn by
`keras_regnet.plots`); `verdict_lines` are the console's lines. No TensorFlow.
"""

import functools
import json
import math
import os

import numpy as np

from keras_regnet import analysis, plots, run_folder, study_checks
from keras_regnet.validation import check_number

ALPHA = study_checks.ALPHA  # significance level of the verdicts
FAIL_ABOVE = 0.2  # a training whose error is above this failed (settings["fail_above"] overrides)
RANK_THRESHOLD = study_checks.RANK_THRESHOLD  # Spearman rho below which errors cannot rank networks
N_BOOT = study_checks.N_BOOT  # bootstrap resamples of each effect size

# (space a, space b, what the paper found, the paper's expectation for b vs a)
PAPER_PAIRS = (
    ("AnyNetX_A", "AnyNetX_B", "sharing one bottleneck ratio b across stages costs no accuracy", "same"),
    ("AnyNetX_B", "AnyNetX_C", "sharing one group width g across stages costs no accuracy", "same"),
    ("AnyNetX_C", "AnyNetX_D", "non-decreasing widths lower the error", "better"),
    ("AnyNetX_D", "AnyNetX_E", "non-decreasing depths lower the error", "better"),
    ("AnyNetX_E", "RegNet", "RegNet's distribution of errors is better than AnyNetX_E's", "better"),
    ("AnyNetX_A", "RegNet", "the paper's end-to-end refinement: RegNet's errors are better than AnyNetX_A's", "better"),
)

FIGURES = {
    "panels": "edf_panels.png",
    "edfs": "edfs.png",
    "flops": "error_vs_flops.png",
    "params": "error_vs_params.png",
    "staircase": "width_staircase.png",
    "seed": "seed_check.png",
    "proxy": "proxy_check.png",
}

FIGURE_TITLES = {
    "panels": "EDF panels (the paper's pairs)",
    "edfs": "All spaces",
    "flops": "Error vs flops",
    "params": "Error vs design parameters",
    "staircase": "Widths of the best models",
    "seed": "Seed check",
    "proxy": "Proxy check",
}


def epochs_text(n):
    """'1 epoch', '5 epochs'."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


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


def detectability(n_a, n_b, alpha=ALPHA):
    """The small-sample caveat: which KS D the exact test can call significant at these sizes."""
    smallest = study_checks.minimum_detectable_d(n_a, n_b, alpha)
    if smallest is None:
        return f"n={n_a} vs {n_b}: no KS D is significant at p<{alpha} with so few models"
    return f"n={n_a} vs {n_b}: only KS D >= {smallest:.2f} is detectable at p<{alpha} (exact test)"


def verdict(expect, ks_p, lower, n_a, n_b, alpha=ALPHA):
    """Honest wording of one comparison: agree only when significant in the paper's direction."""
    sig = ks_p < alpha
    caveat = detectability(n_a, n_b, alpha)
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


def summarize(
    errors_by_space, flops_by_space, pairs=PAPER_PAIRS, alpha=ALPHA, *, fail_above=FAIL_ABOVE, n_boot=N_BOOT, seed=0
):
    """Per-space statistics, EDF values at shared error levels, and the paper's pairwise comparisons.

    Pure numbers (no TensorFlow): the unit of `report.md` and `summary.json`.
    Spaces with no errors are left out. Normalized EDFs weight models by
    flops over shared log-spaced bins (the common range of all spaces).
    Each space counts its failed trainings (error above `fail_above`; they
    stay in every statistic). Each comparison carries two effect sizes with
    percentile-bootstrap 95% intervals (`n_boot` resamples, `seed`):
    ``median_difference`` = median_b - median_a (negative: b lower) and
    ``edf_area`` = the area between the EDFs, F_b - F_a (positive: b lower).
    """
    fail_above = check_number("fail_above", fail_above, 0, min_open=True)
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
        failed = int(np.sum(e > fail_above))
        spaces[k] = {
            "n": int(e.size),
            "failed": failed,
            "failed_share": failed / e.size,
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
        found = study_checks.compare(errs[a], errs[b], alpha=alpha, n_boot=n_boot, seed=seed)
        grid = np.unique(np.concatenate([errs[a], errs[b]]))
        nb_lower, na_lower = study_checks.sup_difference(
            functools.partial(analysis.normalized_edf, errs[a], flops[a], bins, complexity_range=crange),
            functools.partial(analysis.normalized_edf, errs[b], flops[b], bins, complexity_range=crange),
            grid,
        )
        outcome, detail = verdict(expect, found["ks_p"], found["lower"], errs[a].size, errs[b].size, alpha)
        if outcome in ("consistent", "inconclusive"):
            median = found["median_difference"]["value"]
            detail += "; " + study_checks.power_text(median, found["ks_d"], found["detectable"])
        comparisons.append(
            {
                "a": a,
                "b": b,
                "paper": finding,
                "expect": expect,
                "ks_d": found["ks_d"],
                "ks_p": found["ks_p"],
                "lower_errors": {"b": b, "a": a}.get(found["lower"], "tie"),
                "normalized_d": max(nb_lower, na_lower),
                "median_a": spaces[a]["median"],
                "median_b": spaces[b]["median"],
                "median_difference": found["median_difference"],
                "edf_area": found["edf_area"],
                "detectable": found["detectable"],
                "verdict": outcome,
                "detail": detail,
                "caveat": detectability(errs[a].size, errs[b].size, alpha),
            }
        )
    return {
        "fail_above": fail_above,
        "bins": bins,
        "flops_range": list(crange),
        "error_levels": levels,
        "alpha": alpha,
        "spaces": spaces,
        "comparisons": comparisons,
    }


def _paired_errors(rows, first, second, name):
    """Two float arrays from the rows' `first` and `second` keys, with errors that name the rows' argument."""
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"{name} must be a list of dicts, got {type(rows).__name__}")
    rows = list(rows)
    out = ([], [])
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise TypeError(f"{name}[{i}] must be a dict, got {type(r).__name__}")
        for key, values in zip((first, second), out):
            if key not in r:
                raise ValueError(f"{name}[{i}] has no {key!r}")
            try:
                values.append(float(r[key]))
            except (TypeError, ValueError):
                raise ValueError(f"{name}[{i}][{key!r}] must be a number, got {r[key]!r}") from None
    return rows, np.asarray(out[0]), np.asarray(out[1])


def _spearman(a, b):
    return analysis.spearman(a, b) if a.size >= 2 else (math.nan, math.nan)


def proxy_summary(rows, short_epochs, epochs):
    """The proxy check's k, epochs and Spearman rank correlation of short and long errors (same seed).

    Rows may carry ``long_error_seed2``, the long schedule's second seed:
    `write_report` then adds its reliabilities, corrected correlation and case
    (`study_checks.assess_proxy`).
    """
    rows, short, long = _paired_errors(rows, "short_error", "long_error", "rows")
    rho, p = _spearman(short, long)
    return {"k": len(rows), "short_epochs": short_epochs, "epochs": epochs, "spearman": rho, "p": p, "rows": rows}


def seed_check_summary(rows):
    """The seed check: do two trainings of the same networks with different seeds rank them alike?

    `rows` are dicts with ``space``, ``trial_id``, ``flops``, ``error`` (the
    study's seed) and ``error_seed2`` (a second seed). Returns ``k``, the
    Spearman ``spearman`` / ``p`` of the two errors, ``seed_sd`` =
    sqrt(mean((error - error_seed2)^2) / 2), one training's seed noise, and
    ``between_sd``, the SD (ddof=1) over the k networks of their two-seed
    mean error: errors rank networks only when between_sd is well above
    seed_sd (and rho near 1). No rows (every second training failed) or
    one row gives NaN statistics, which `rank_check` counts as a failed check.
    """
    rows, a, b = _paired_errors(rows, "error", "error_seed2", "rows")
    rho, p = _spearman(a, b)
    seed_sd = float(math.sqrt(np.mean((a - b) ** 2) / 2)) if a.size else math.nan
    between_sd = float(np.std((a + b) / 2, ddof=1)) if a.size >= 2 else math.nan
    return {"k": len(rows), "spearman": rho, "p": p, "seed_sd": seed_sd, "between_sd": between_sd, "rows": rows}


def _rho_text(name, check):
    rho = check["spearman"]
    if rho is None or not math.isfinite(rho):
        return f"{name} rho undefined (k={check['k']}, constant errors or too few networks)"
    return f"{name} rho {rho:.2f} (k={check['k']})"


def _proxy_part(proxy, threshold):
    """How the proxy check counts: ('pass' | 'fail' | 'short' | 'missing', text)."""
    if not proxy.get("k_long_seeds"):  # no second long seed (an older study): its raw Spearman, as before
        rho = proxy["spearman"]
        if rho is None or not math.isfinite(rho) or rho < threshold:
            return "fail", f"{_rho_text('proxy', proxy)} < {threshold:g}"
        return "pass", f"{_rho_text('proxy', proxy)} >= {threshold:g}"
    case = proxy.get("case")
    interval = proxy.get("long_seed_interval") or {}
    long_rho = f"{proxy['epochs']}-epoch seed rho {study_checks.rho_text(interval.get('value'))}"
    long_rho += f" [{study_checks.rho_text(interval.get('low'))}, {study_checks.rho_text(interval.get('high'))}]"
    long_rho += f" (k={proxy['k_long_seeds']})"
    corrected = f"corrected proxy rho {study_checks.corrected_text(proxy.get('corrected'))}"
    if case == "a":
        return "pass", f"case (a): {corrected} >= {threshold:g}"
    if case == "b":
        return "short", f"case (b): {long_rho}: the long schedule does not separate networks"
    if case == "c":
        return "fail", f"case (c): short training ranks networks unlike long training ({corrected} < {threshold:g})"
    return "missing", f"proxy case not determined ({corrected})"


def rank_check(seed_check=None, proxy=None, threshold=RANK_THRESHOLD):
    """(can_rank, warning): can this run's errors rank networks, and what do its verdicts describe?

    The seed check (two seeds at the study's schedule) must reach rho >=
    `threshold`. The proxy check counts by its case once it has networks with
    two long seeds (`study_checks.proxy_case`): (a) passes; (b) passes with
    the warning "about short training on this data (...)"; (c) fails, so
    "unreliable"; an undetermined case is unchecked. A proxy check without a
    second long seed (an older study) counts by its raw Spearman, as before.
    True when both pass (warning None, or case (b)'s); False when either
    fails; None (unchecked) when a check did not run or its case could not be
    told, and none failed.
    """
    failed, passed, missing, short_only, biased = [], [], [], [], []
    if not seed_check:
        missing.append("no seed check")
    else:
        rho = seed_check["spearman"]
        if rho is None or not math.isfinite(rho) or rho < threshold:
            failed.append(f"{_rho_text('seed', seed_check)} < {threshold:g}")
        else:
            passed.append(f"{_rho_text('seed', seed_check)} >= {threshold:g}")
    if not proxy:
        missing.append("no proxy check")
    else:
        kind, text = _proxy_part(proxy, threshold)
        if kind == "fail" and not proxy.get("k_long_seeds"):
            failed.append(text)
        else:
            {"fail": biased, "pass": passed, "short": short_only, "missing": missing}[kind].append(text)
    if failed or biased:
        parts = [f"errors cannot rank networks ({'; '.join(failed)})"] if failed else []
        return False, "unreliable: " + "; ".join(parts + biased)
    if missing:
        return None, f"unchecked: whether errors rank networks is unknown ({'; '.join(missing + passed + short_only)})"
    if short_only:
        return True, f"{study_checks.CASE_LABELS['b']} ({short_only[0]})"
    return True, None


def verdict_lines(summary):
    """The console's lines, one per comparison, with the same caveats as report.md."""
    lines = []
    for c in summary["comparisons"]:
        md = c["median_difference"]
        caveat = f"{c['rank_caveat']}; " if c.get("rank_caveat") else ""
        lines.append(
            f"{c['a']} vs {c['b']}: KS D={c['ks_d']:.3f} p={c['ks_p']:.3g} median diff {md['value']:+.4f} "
            f"[{md['low']:+.4f}, {md['high']:+.4f}] -> {caveat}{c['verdict']}: {c['detail']}"
        )
    confirm = summary.get("confirm")
    if confirm:
        long, md = confirm["long"], confirm["long"]["median_difference"]
        lines.append(
            f"{confirm['a']} vs {confirm['b']} at {epochs_text(confirm['epochs'])} ({long['n_a']} vs {long['n_b']} "
            f"networks): KS D={long['ks_d']:.3f} p={long['ks_p']:.3g} median diff {md['value']:+.4f} "
            f"[{md['low']:+.4f}, {md['high']:+.4f}] -> {confirm['text']}"
        )
    return lines


def make_figures(out, trials, stats, proxy=None, best=3, seed_check=None):
    """The PNGs (file name -> path); figures needing two spaces are skipped with one."""
    errs = {k: [float(r["val_error"]) for r in v] for k, v in trials.items() if v}
    flops = {k: [float(r["flops"]) for r in v] for k, v in trials.items() if v}
    paths, bins = {}, stats["bins"]
    fail_above = stats.get("fail_above")
    pairs = [(c["a"], c["b"]) for c in stats["comparisons"]]
    if pairs:
        paths["panels"] = plots.plot_edf_panels(
            errs,
            os.path.join(out, FIGURES["panels"]),
            pairs=pairs,
            complexity_by_space=flops,
            bins=bins,
            title="Complexity-normalized error EDFs (KS on the raw errors)",
        )
    paths["edfs"] = plots.plot_edfs(
        errs,
        os.path.join(out, FIGURES["edfs"]),
        title="Complexity-normalized error EDFs",
        complexity_by_space=flops,
        bins=bins,
    )
    paths["flops"] = plots.plot_error_vs_flops(errs, flops, os.path.join(out, FIGURES["flops"]), fail_above=fail_above)
    try:
        paths["params"] = plots.plot_error_vs_params(
            trials, os.path.join(out, FIGURES["params"]), fail_above=fail_above
        )
    except ValueError:  # no design parameter varies (or the rows carry none)
        pass
    top = sorted(((float(r["val_error"]), k, r) for k, v in trials.items() for r in v), key=lambda t: t[:2])[:best]
    widths = [per_block_widths(r) for _, _, r in top]
    w0_high = max(256, max(w[0] for w in widths))
    paths["staircase"] = plots.plot_width_staircase(
        widths,
        os.path.join(out, FIGURES["staircase"]),
        labels=[f"{k} #{r['trial_id']} err {e:.3f}" for e, k, r in top],
        title=f"Per-block widths of the {len(top)} best models, with the RegNet fit",
        w_0_range=(8, w0_high),
    )
    if seed_check and seed_check["rows"]:
        rows = seed_check["rows"]
        paths["seed"] = plots.plot_rank_agreement(
            [float(r["error"]) for r in rows],
            [float(r["error_seed2"]) for r in rows],
            os.path.join(out, FIGURES["seed"]),
            xlabel="error, study seed",
            ylabel="error, second seed",
            title=f"Seed check: Spearman rho={seed_check['spearman']:.2f} (p={seed_check['p']:.2g}, "
            f"k={seed_check['k']}); dotted: y = x",
            groups=[r.get("space", "") for r in rows],
            identity=True,
        )
    if proxy and proxy["rows"]:
        rows = proxy["rows"]
        paths["proxy"] = plots.plot_rank_agreement(
            [float(r["short_error"]) for r in rows],
            [float(r["long_error"]) for r in rows],
            os.path.join(out, FIGURES["proxy"]),
            xlabel=f"error after {epochs_text(proxy['short_epochs'])} (study)",
            ylabel=f"error after {epochs_text(proxy['epochs'])}",
            title=f"Proxy check: Spearman rho={proxy['spearman']:.2f} (p={proxy['p']:.2g}, k={proxy['k']})",
            groups=[r.get("space", "") for r in rows],
        )
    return paths


def _apply_confirm(comparisons, confirm, warning):
    """Every comparison's ``rank_caveat``; the retested one's follows its long-schedule result.

    Holds: reported plainly (None); reverses: "unreliable: ..."; not
    resolved: the run's warning, as for the others.
    """
    for c in comparisons:
        c["rank_caveat"] = warning
        if not confirm or (c["a"], c["b"]) != (confirm["a"], confirm["b"]):
            continue
        c["confirm"] = confirm["result"]
        long = confirm["long"]
        c["detail"] += (
            f"; at {epochs_text(confirm['epochs'])} ({long['n_a']} vs {long['n_b']} networks, "
            f"KS p={long['ks_p']:.2g}): {confirm['result']}"
        )
        if confirm["result"] == "holds":
            c["rank_caveat"] = None
        elif confirm["result"] == "reverses":
            c["rank_caveat"] = f"unreliable: {confirm['text']}"


def write_report(out, trials, settings, proxy=None, seed_check=None, confirm=None):
    """OUT/report.md, OUT/summary.json and the figures from the completed trials; returns the summary.

    `settings["fail_above"]` (absent or None: FAIL_ABOVE) is the error above
    which a training counts as failed. `proxy` is `proxy_summary`'s dict and
    `seed_check` `seed_check_summary`'s (None: not run); the proxy check gets
    its reliabilities, corrected correlation and case
    (`study_checks.assess_proxy`), from which `rank_check` decides
    ``can_rank`` (True / False / None = unchecked) and every comparison gets
    ``rank_caveat`` (the warning, or None). `confirm` ({a, b, k, short_epochs,
    epochs, rows}: the study's `--confirm` trainings) becomes ``confirm``, the
    headline comparison at both schedules (`study_checks.confirm_summary`),
    and decides that comparison's caveat when it holds or reverses.
    """
    errs = {k: [float(r["val_error"]) for r in v] for k, v in trials.items()}
    flops = {k: [float(r["flops"]) for r in v] for k, v in trials.items()}
    fail_above = settings.get("fail_above")
    stats = summarize(errs, flops, fail_above=FAIL_ABOVE if fail_above is None else fail_above)
    if proxy:
        proxy = {**proxy, **study_checks.assess_proxy(proxy, seed_check)}
    can_rank, warning = rank_check(seed_check, proxy)
    confirmed = None
    if confirm:
        pair = (confirm["a"], confirm["b"])
        reference = next((c for c in stats["comparisons"] if (c["a"], c["b"]) == pair), None)
        confirmed = study_checks.confirm_summary(confirm, reference) if reference else None
    _apply_confirm(stats["comparisons"], confirmed, warning)
    figures = make_figures(out, {k: v for k, v in trials.items() if v}, stats, proxy, seed_check=seed_check)
    summary = {
        "settings": settings,
        "can_rank": can_rank,
        "rank_warning": warning,
        "rank_threshold": RANK_THRESHOLD,
        **stats,
        "seed_check": seed_check,
        "proxy_check": proxy,
        "confirm": confirmed,
        "figures": {k: os.path.basename(p) for k, p in figures.items()},
        "missing": [k for k, v in trials.items() if not v],
    }
    run_folder.write_text(os.path.join(out, "summary.json"), json.dumps(summary, indent=2, default=float) + "\n")
    run_folder.write_text(os.path.join(out, "report.md"), render_report(summary))
    return summary


def _failed_text(summary):
    """'AnyNetX_A 2/20 (10%), RegNet 0/20 (0%)'."""
    return ", ".join(
        f"{name} {v['failed']}/{v['n']} ({v['failed_share']:.0%})" for name, v in summary["spaces"].items()
    )


def _rank_section(summary):
    """The report's first section: can these errors rank networks at all, and which case is the run in?"""
    can_rank, warning, threshold = summary["can_rank"], summary["rank_warning"], summary["rank_threshold"]
    seed, proxy = summary.get("seed_check"), summary.get("proxy_check")
    if can_rank is False:
        answer = (
            "**No: this run's errors cannot rank networks.** Every verdict below is marked "
            f"'{warning}': a difference between spaces can come from training noise alone."
        )
    elif can_rank is None:
        answer = (
            "**Unchecked: this run did not measure whether its errors rank networks.** Every verdict below is "
            f"marked '{warning}'; run the study with a seed check and a proxy check to know."
        )
    elif warning:
        answer = (
            f"**Yes, for short training only**: two seeds rank networks alike (Spearman rho >= {threshold:g}), but "
            f"the {proxy['epochs']}-epoch errors do not separate networks on this data, so every verdict below is "
            f"marked '{warning}'."
        )
    elif proxy and proxy.get("case") == "a":
        answer = (
            f"**Yes**: two seeds rank networks alike (Spearman rho >= {threshold:g}) and short training ranks them "
            "as long training does (case (a) below), so the verdicts below measure architecture rather than "
            "training noise (within their intervals)."
        )
    else:
        answer = (
            f"**Yes**: both checks rank networks alike (Spearman rho >= {threshold:g}), so the verdicts below "
            "measure architecture rather than training noise (within their intervals)."
        )
    lines = ["## Can these errors rank networks?", "", answer, ""]
    if seed:
        ratio = seed["between_sd"] / seed["seed_sd"] if seed["seed_sd"] > 0 else math.nan
        lines.append(
            f"- Seed check: {seed['k']} networks trained again with a second seed; Spearman rho between the two "
            f"errors = {seed['spearman']:.3f} (p = {seed['p']:.3g}, k = {seed['k']}). One training's seed noise "
            f"SD = {seed['seed_sd']:.4f} vs SD between networks (two-seed means) = {seed['between_sd']:.4f} "
            + (f"({ratio:.1f}x)." if math.isfinite(ratio) else "(no ratio).")
        )
    else:
        lines.append("- Seed check: not run.")
    if proxy:
        lines.append(
            f"- Proxy check: {proxy['k']} networks retrained for {epochs_text(proxy['epochs'])}; Spearman rho "
            f"between the {proxy['short_epochs']}-epoch and {proxy['epochs']}-epoch errors = "
            f"{proxy['spearman']:.3f} (p = {proxy['p']:.3g}, k = {proxy['k']}; the same seed: raw)."
        )
        lines += _case_lines(proxy, seed, threshold)
    else:
        lines.append("- Proxy check: not run.")
    lines.append(f"- Failed trainings (error > {summary['fail_above']:g}): {_failed_text(summary)}.")
    lines.append(
        f"- Threshold: errors rank networks when both Spearman rho >= {threshold:g}; the paper assumes they do."
    )
    return lines + [""]


def _case_lines(proxy, seed, threshold):
    """The proxy check's reliabilities, corrected correlation and case, as report lines."""
    if not proxy.get("k_long_seeds"):
        return [
            f"- Long reference: no network was trained at {proxy['epochs']} epochs with a second seed, so this "
            "study cannot tell a biased proxy from a long schedule that does not rank networks (the raw rho counts)."
        ]
    interval = proxy["long_seed_interval"]
    rho = study_checks.rho_text
    lines = []
    if interval:
        lines.append(
            f"- Seed Spearman at each schedule: {proxy['short_epochs']} epochs "
            f"{rho(proxy.get('short_seed_spearman'))} (seed check, k = {seed['k'] if seed else 0}); "
            f"{proxy['epochs']} epochs {rho(interval['value'])} [95%: {rho(interval['low'])}, {rho(interval['high'])}] "
            f"(k = {proxy['k_long_seeds']} networks trained twice at {proxy['epochs']} epochs)."
        )
        lines.append(
            f"- Corrected proxy correlation = rho({proxy['short_epochs']}-epoch error, {proxy['epochs']}-epoch error "
            f"of the second seed) / sqrt(seed rho at {proxy['short_epochs']} x seed rho at {proxy['epochs']}) = "
            f"{rho(proxy['cross_seed_spearman'])} / sqrt({rho(proxy.get('short_seed_spearman'))} x "
            f"{rho(interval['value'])}) = {study_checks.corrected_text(proxy['corrected'])} (Spearman's attenuation "
            "correction; 95% bootstrap over networks)."
        )
    lines.append(f"- **{proxy['case_text'][0].upper()}{proxy['case_text'][1:]}.**")
    lines.append(
        f"- The case rule, fixed before any data: (b) when the long schedule's seed rho is below {threshold:g} or "
        f"its interval reaches 0; else (a) when the corrected proxy correlation is >= {threshold:g}; else (c). "
        "Labels: (a) reported plainly; (b) 'about short training on this data'; (c) 'unreliable'; a verdict that "
        "holds at the long schedule (the headline comparison below) is reported plainly."
    )
    return lines


def _detectable_text(found):
    d = "-" if found["ks_d"] is None else f"{found['ks_d']:.2f}"
    median = "-" if found["median_difference"] is None else f"{found['median_difference']:.4f}"
    return f"{d} / {median}"


def _confirm_lines(confirm):
    """The headline comparison at both schedules, on the same networks."""
    if not confirm:
        return []
    lines = [
        "",
        f"## The headline comparison at {epochs_text(confirm['epochs'])}",
        "",
        f"{confirm['a']} vs {confirm['b']} retested as the paper checks its claims: {confirm['k']} networks per "
        f"space (fewer where a space has fewer) trained again for {epochs_text(confirm['epochs'])}, the proxy "
        "check's trainings reused where they are the same networks; the same networks' errors after "
        f"{epochs_text(confirm['short_epochs'])} beside them. Holds: significant at "
        f"{epochs_text(confirm['epochs'])} with the same space lower as in the whole study; reverses: significant "
        "with the other lower; not resolved: not significant.",
        "",
        "| schedule | n | KS D | p | median diff b-a [95%] | EDF area [95%] | lower errors | "
        "detectable D / median diff |",
        "|---|---|---:|---:|---|---|---|---|",
    ]
    for key in ("short", "long"):
        c = confirm[key]
        lower = {"a": confirm["a"], "b": confirm["b"]}.get(c["lower"], "tie")
        lines.append(
            f"| {epochs_text(c['epochs'])} | {c['n_a']} vs {c['n_b']} | {c['ks_d']:.3f} | {c['ks_p']:.3g} | "
            f"{_ci(c['median_difference'])} | {_ci(c['edf_area'])} | {lower} | {_detectable_text(c['detectable'])} |"
        )
    result = confirm["result"]
    return lines + ["", f"Result: **{result}**{confirm['text'][len(result) :]}."]


def _ci(interval, digits=4):
    return f"{interval['value']:+.{digits}f} [{interval['low']:+.{digits}f}, {interval['high']:+.{digits}f}]"


def _images_text(settings):
    """' (trained on N images, scored on M: validation + test)' where the study recorded them."""
    if not settings.get("trained_images"):
        return ""
    split = settings.get("score_split", "validation")
    return f" (trained on {settings['trained_images']:,} images, scored on {settings['scored_images']:,}: {split})"


def render_report(summary):
    """report.md text from a summary dict."""
    s, st = summary["settings"], summary["spaces"]
    fail_above = summary["fail_above"]
    lines = [
        "# Design-space study",
        "",
        f"{s['samples']} networks sampled per space (random sampling, never Hyperband) in the flop window "
        f"{window_text(s['flops'])} at {s['image_size']}x{s['image_size']}, each trained "
        f"{epochs_text(s['epochs'])} (batch {s['batch_size']}, peak lr {s['lr']}, warm-up + cosine) on "
        f"`{s['dataset']}`; error = final-epoch validation error{_images_text(s)}. Seed {s['seed']}; each "
        "training's weights and data order come from the seed and the trial alone.",
        "",
        *_rank_section(summary),
        "## Spaces",
        "",
        f"A training failed when its error is above {fail_above:g}; failed trainings stay in every statistic.",
        "",
        f"| space | n | min | median | mean | normalized mean | flops range | failed (error > {fail_above:g}) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, v in st.items():
        lines.append(
            f"| {name} | {v['n']} | {v['min']:.4f} | {v['median']:.4f} | {v['mean']:.4f} | "
            f"{v['normalized_mean']:.4f} | {v['flops_min'] / 1e6:.2f}M - {v['flops_max'] / 1e6:.2f}M | "
            f"{v['failed_share']:.0%} ({v['failed']}/{v['n']}) |"
        )
    for name in summary.get("missing", []):
        lines.append(f"| {name} | 0 | - | - | - | - | - | - |")
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
        f"Two-sample Kolmogorov-Smirnov test on the raw errors (significance level {summary['alpha']}). "
        "Median diff = median(b) - median(a) (negative: b has lower errors); EDF area = the area between the "
        "EDFs, F_b - F_a, over the pooled errors (positive: b has lower errors; it equals mean(a) - mean(b), "
        "so failed trainings weigh in with their full error and widen it); both with percentile-bootstrap 95% "
        "intervals (each space resampled independently): an interval that "
        "spans 0 leaves the sign open. 'Lower errors' is the space whose EDF lies above at the largest gap; "
        "normalized D is the largest gap between the complexity-normalized EDFs. Detectable: the smallest KS D "
        f"the exact test calls significant at these n, and the smallest median difference found with "
        f"{study_checks.POWER:.0%} power (2.80 x the median difference's bootstrap SE, read from its interval: "
        "every error holds its training's seed noise).",
        "",
        "| comparison | paper found | KS D | p | median diff b-a [95%] | EDF area [95%] | lower errors | "
        "normalized D | detectable D / median diff | this run |",
        "|---|---|---:|---:|---|---|---|---:|---|---|",
    ]
    for c in summary["comparisons"]:
        caveat = f"_{c['rank_caveat']}_; " if c.get("rank_caveat") else ""
        lines.append(
            f"| {c['a']} vs {c['b']} | {c['paper']} | {c['ks_d']:.3f} | {c['ks_p']:.3g} | "
            f"{_ci(c['median_difference'])} | {_ci(c['edf_area'])} | "
            f"{c['lower_errors']} | {c['normalized_d']:.3f} | {_detectable_text(c['detectable'])} | "
            f"{caveat}**{c['verdict']}**: {c['detail']} |"
        )
    if not summary["comparisons"]:
        lines.append("| - | (needs both spaces of a pair) | | | | | | | | |")
    lines += _confirm_lines(summary.get("confirm"))
    seed = summary.get("seed_check")
    if seed:
        lines += [
            "",
            "## Seed check",
            "",
            f"{seed['k']} study networks trained again with a second seed (same epochs and data): Spearman "
            f"rho = {seed['spearman']:.3f} (p = {seed['p']:.3g}); seed noise SD of one training "
            f"{seed['seed_sd']:.4f}, SD between networks {seed['between_sd']:.4f}.",
            "",
            "| space | trial | flops | error | error, second seed |",
            "|---|---|---:|---:|---:|",
        ]
        for r in seed["rows"]:
            lines.append(
                f"| {r.get('space', '')} | {r.get('trial_id', '')} | {float(r.get('flops', 0)) / 1e6:.2f}M | "
                f"{float(r['error']):.4f} | {float(r['error_seed2']):.4f} |"
            )
    proxy = summary.get("proxy_check")
    if proxy:
        short_epochs = proxy["short_epochs"]
        lines += [
            "",
            "## Proxy check",
            "",
            f"{proxy['k']} study models retrained for {epochs_text(proxy['epochs'])} "
            f"({proxy['epochs'] // short_epochs}x): Spearman "
            f"rank correlation between the {short_epochs}-epoch and {proxy['epochs']}-epoch errors "
            f"rho = {proxy['spearman']:.3f} (p = {proxy['p']:.3g}). The paper assumes short training ranks "
            "networks as long training does; a rho near 1 supports that on this data.",
            "",
            "| space | trial | flops | short error | long error | long error, second seed |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in proxy["rows"]:
            second = r.get("long_error_seed2")
            second = "-" if second in (None, "") or not math.isfinite(float(second)) else f"{float(second):.4f}"
            lines.append(
                f"| {r['space']} | {r['trial_id']} | {int(float(r['flops'])) / 1e6:.2f}M | "
                f"{float(r['short_error']):.4f} | {float(r['long_error']):.4f} | {second} |"
            )
    lines += ["", "## Figures", ""]
    for key, name in summary["figures"].items():
        lines += [f"### {FIGURE_TITLES[key]}", "", f"![{FIGURE_TITLES[key]}]({name})", ""]
    lines += [
        "## Caveats",
        "",
        "- Small samples: the paper used ~500 models per space; with the n above only large "
        "distribution shifts are significant, so 'inconclusive' is not evidence of no effect.",
        "- Short training and a small validation set make each error noisy (the seed and proxy checks above "
        "measure how well these errors rank networks).",
        "",
    ]
    return "\n".join(lines)
