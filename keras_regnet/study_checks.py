"""What a study's checks can show: rank reliabilities, the corrected proxy, the case it is in, and power.

Why: the proxy check compares short-training errors with long-training ones,
but a proxy Spearman cannot exceed about sqrt(r_short x r_long), the two
schedules' own seed-to-seed rank reliabilities (Spearman's attenuation,
1904). On small data long training can erase the differences between
networks (its two seeds then disagree) and no proxy can agree with it. So the
proxy check trains each of its networks at the long schedule with two seeds,
and this module decides, by a rule fixed before any data is seen, which of
three cases a run is in:

    (a) short training ranks networks as long training does: verdicts reported plainly;
    (b) the long schedule does not separate networks on this data, so the
        verdicts describe short training only: "about short training on this data";
    (c) short training ranks them differently (a biased proxy): "unreliable".

The case rule (`proxy_case`), with one bar, `RANK_THRESHOLD` = 0.7, the
study's "ranks networks alike" bar from before these checks (bench/README.md,
"Study recipe"; rho 0.7 shares about half the rank variance):

    (b) when the long schedule's seed Spearman r_long is undefined or < 0.7,
        or its bootstrap 95% interval reaches 0 (not shown to rank at all);
    else (a) when the corrected proxy correlation is >= 0.7;
    else (c) (the long reference ranks networks, and short training does not
        rank them its way);
    None (not determined) when the corrected correlation cannot be estimated
        (no seed check, or a reliability <= 0) or fewer than 3 networks have
        both long seeds.

The corrected correlation is r_cross / sqrt(r_short x r_long): r_cross =
Spearman(short error, long error with the *second* seed), whose seed noise is
independent of the short error's (the study's short and long trainings share
their seed, so their first epoch is the same: that shared noise would count
as agreement); r_short = the seed check's Spearman, r_long = Spearman of the
long error's two seeds. Not estimable when a reliability is <= 0 or undefined;
a value beyond +-1 is clipped and says so. Its 95% interval: a percentile
bootstrap (fixed seed) that resamples the proxy check's networks (their three
errors together) and, independently, the seed check's networks (another
sample of the same spaces), recomputing all three correlations each time.

Power (`detectable`): the smallest KS D the exact two-sided test calls
significant at alpha 0.05 for these n (`analysis.minimum_detectable_d`; a
true difference of that size is found about half the time), and the smallest
median difference found with 80% power, (z_0.975 + z_0.80) x SE = 2.80 x SE,
with SE = the width of the median difference's 95% bootstrap interval / 3.92.
Each error holds its training's seed noise, so resampling networks puts the
seed noise into SE: this is the power at this n and this noise.

Pure numbers (numpy and scipy through `keras_regnet.analysis`), no TensorFlow.
"""

import functools
import math

import numpy as np

from keras_regnet import analysis

ALPHA = 0.05  # significance level of every test in the study
RANK_THRESHOLD = 0.7  # Spearman rho: below it two rankings do not rank networks alike
POWER = 0.8  # power at which the smallest detectable median difference is given
LEVEL = 0.95  # coverage of every bootstrap interval
N_BOOT = 2000  # bootstrap resamples
BOOT_SEED = 0  # the bootstrap's fixed seed: the same data give the same intervals
MIN_NETWORKS = 3  # fewest networks for a rank correlation

CASE_TEXT = {
    "a": "short training ranks networks as long training does",
    "b": "the long schedule does not separate networks on this data",
    "c": "short training ranks networks differently from long training (a biased proxy)",
}
CASE_LABELS = {"a": None, "b": "about short training on this data", "c": "unreliable"}
CONFIRM_RESULTS = ("holds", "reverses", "not resolved")


# --------------------------------------------------------------------------- rank correlations


def _float_or_none(value):
    if value in (None, ""):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def batched_spearman(x, y):
    """Spearman rho of each row pair of two (resamples, k) arrays (average ranks for ties); NaN when constant."""
    from scipy import stats

    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def _spearman(x, y):
    return float(batched_spearman(np.asarray(x, float)[None], np.asarray(y, float)[None])[0])


def _percentiles(values, level=LEVEL):
    """(low, high) of the finite values; (NaN, NaN) when none is."""
    values = values[np.isfinite(values)]
    if not values.size:
        return math.nan, math.nan
    low, high = np.percentile(values, [50.0 * (1 - level), 50.0 * (1 + level)])
    return float(low), float(high)


def correct(cross, short_seed, long_seed):
    """(value, clipped): r_cross / sqrt(r_short x r_long), clipped to [-1, 1]; (None, False) when not estimable."""
    if not all(v is not None and math.isfinite(v) for v in (cross, short_seed, long_seed)):
        return None, False
    if short_seed <= 0 or long_seed <= 0:
        return None, False
    value = cross / math.sqrt(short_seed * long_seed)
    return float(min(1.0, max(-1.0, value))), abs(value) > 1


def _batched_correct(cross, short_seed, long_seed):
    ok = np.isfinite(cross) & np.isfinite(short_seed) & np.isfinite(long_seed) & (short_seed > 0) & (long_seed > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.clip(cross / np.sqrt(np.where(ok, short_seed * long_seed, 1.0)), -1.0, 1.0)
    return np.where(ok, value, np.nan)


def _complete_proxy_rows(rows):
    """(short, long, long seed 2) arrays of the proxy rows whose three errors are all known."""
    triples = []
    for r in rows:
        values = [_float_or_none(r.get(key)) for key in ("short_error", "long_error", "long_error_seed2")]
        if None not in values:
            triples.append(values)
    return np.asarray(triples, float).reshape(-1, 3)


def assess_proxy(proxy, seed_check=None, *, threshold=RANK_THRESHOLD, n_boot=N_BOOT, seed=BOOT_SEED):
    """The proxy check's reliabilities, corrected correlation and case (the fields `write_report` adds).

    `proxy` is `report.proxy_summary`'s dict, its rows with ``long_error_seed2``
    (the long schedule's second seed; absent or None where not trained);
    `seed_check` is `report.seed_check_summary`'s (None: not run). Returns
    ``k_long_seeds`` (networks with both long seeds), ``long_seed_spearman``
    and its interval ``long_seed_interval``, ``short_seed_spearman``,
    ``cross_seed_spearman`` (short vs long seed 2), ``corrected`` (value, low,
    high, clipped, estimable_share; value None when not estimable), ``case``
    ('a', 'b', 'c' or None) and ``case_text`` (the case in words).
    """
    triples = _complete_proxy_rows(proxy.get("rows", []))
    k = len(triples)
    seed_rows = (seed_check or {}).get("rows") or []
    pairs = np.asarray([[float(r["error"]), float(r["error_seed2"])] for r in seed_rows], float).reshape(-1, 2)
    short_seed = (seed_check or {}).get("spearman")
    short_seed = None if short_seed is None or not math.isfinite(short_seed) else float(short_seed)
    result = {
        "k_long_seeds": k,
        "short_seed_spearman": short_seed,
        "long_seed_spearman": None,
        "long_seed_interval": None,
        "cross_seed_spearman": None,
        "corrected": None,
    }
    if k >= MIN_NETWORKS:
        long_seed = _spearman(triples[:, 1], triples[:, 2])
        cross = _spearman(triples[:, 0], triples[:, 2])
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, k, size=(n_boot, k))
        boot_long = batched_spearman(triples[idx, 1], triples[idx, 2])
        boot_cross = batched_spearman(triples[idx, 0], triples[idx, 2])
        low, high = _percentiles(boot_long)
        result["long_seed_spearman"] = long_seed
        result["long_seed_interval"] = {"value": long_seed, "low": low, "high": high}
        result["cross_seed_spearman"] = cross
        value, clipped = correct(cross, short_seed, long_seed)
        if value is not None and len(pairs) >= 2:
            j = rng.integers(0, len(pairs), size=(n_boot, len(pairs)))
            boot = _batched_correct(boot_cross, batched_spearman(pairs[j, 0], pairs[j, 1]), boot_long)
            low, high = _percentiles(boot)
            share = float(np.mean(np.isfinite(boot)))
        else:
            low = high = math.nan
            share = 0.0
        result["corrected"] = {
            "value": value,
            "low": low,
            "high": high,
            "clipped": clipped,
            "estimable_share": share,
        }
    result["case"] = proxy_case(result["long_seed_interval"], result["corrected"], threshold)
    result["case_text"] = case_text(result, proxy.get("short_epochs"), proxy.get("epochs"), threshold)
    return result


def proxy_case(long_seed, corrected, threshold=RANK_THRESHOLD):
    """The case rule (module docstring): 'a', 'b', 'c', or None when it cannot be told.

    `long_seed` is the long schedule's seed Spearman as {value, low, high}
    (None: fewer than 3 networks with both long seeds); `corrected` is the
    corrected proxy correlation as {value, ...} (value None: not estimable).
    """
    if long_seed is None:
        return None
    value, low = long_seed["value"], long_seed["low"]
    if not math.isfinite(value) or value < threshold or not math.isfinite(low) or low <= 0:
        return "b"
    if corrected is None or corrected["value"] is None:
        return None
    return "a" if corrected["value"] >= threshold else "c"


def rho_text(value):
    return "undefined" if value is None or not math.isfinite(value) else f"{value:.2f}"


def corrected_text(corrected):
    """'0.64 [0.31, 0.98]' (with the share of resamples it could be estimated in, when not all)."""
    if corrected is None or corrected["value"] is None:
        return "not estimable (a seed Spearman is <= 0 or unknown)"
    text = f"{corrected['value']:.2f} [{rho_text(corrected['low'])}, {rho_text(corrected['high'])}]"
    notes = []
    if corrected["clipped"]:
        notes.append("clipped at 1: the raw ratio exceeds it, as sampling noise can make it")
    if corrected["estimable_share"] < 1:
        notes.append(f"interval from the {corrected['estimable_share']:.0%} of resamples where it is estimable")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def case_text(result, short_epochs, epochs, threshold=RANK_THRESHOLD):
    """The case in words, with the numbers that decided it."""
    long_name = f"{epochs}-epoch" if epochs else "long"
    short_name = f"{short_epochs}-epoch" if short_epochs else "short"
    interval = result["long_seed_interval"]
    case = result["case"]
    if interval is None:
        return (
            f"case not determined: fewer than {MIN_NETWORKS} networks were trained at {epochs} epochs with two seeds "
            f"({result['k_long_seeds']})"
        )
    long_text = (
        f"the {long_name} errors' two seeds agree at rho {rho_text(interval['value'])} "
        f"[{rho_text(interval['low'])}, {rho_text(interval['high'])}] (k={result['k_long_seeds']})"
    )
    if case == "b":
        value = interval["value"]
        why = f"below {threshold:g}" if not math.isfinite(value) or value < threshold else "its interval reaches 0"
        return (
            f"case (b): {CASE_TEXT['b']}: {long_text}, {why}, so no proxy can agree with it; the verdicts describe "
            f"{short_name} training on this data only"
        )
    corrected = f"corrected proxy rho {corrected_text(result['corrected'])}"
    if case == "a":
        return f"case (a): {CASE_TEXT['a']}: {long_text}, and the {corrected} >= {threshold:g}"
    if case == "c":
        return f"case (c): {CASE_TEXT['c']}: {long_text} (it ranks networks), but the {corrected} < {threshold:g}"
    return f"case not determined: {long_text}, but the {corrected} (it needs the seed check)"


# --------------------------------------------------------------------------- comparisons and power


def sup_difference(curve_a, curve_b, points):
    """max(F_b - F_a) and max(F_a - F_b) over `points` (strict EDFs, both sides of each jump)."""
    at = np.concatenate([points, np.nextafter(points, np.inf)])
    diff = curve_b(at) - curve_a(at)
    return float(max(diff.max(), 0.0)), float(max((-diff).max(), 0.0))


@functools.lru_cache(maxsize=256)
def minimum_detectable_d(n_a, n_b, alpha=ALPHA):
    """`analysis.minimum_detectable_d`, cached (each comparison asks for it more than once)."""
    return analysis.minimum_detectable_d(n_a, n_b, alpha)


def detectable(n_a, n_b, median_interval, *, alpha=ALPHA, power=POWER, level=LEVEL):
    """The smallest effects this comparison detects: {ks_d, median_difference, power} (module docstring).

    ``ks_d`` is None when no D is significant at these n; ``median_difference``
    is None when the interval has no width to read an SE from.
    """
    from scipy.stats import norm

    se = (median_interval["high"] - median_interval["low"]) / (2 * norm.ppf(0.5 + level / 2))
    mde = (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se
    return {
        "ks_d": minimum_detectable_d(int(n_a), int(n_b), alpha),
        "median_difference": float(mde) if math.isfinite(mde) and mde > 0 else None,
        "power": power,
    }


def power_text(median_found, found_d, found):
    """Would a real effect of the size found have been detected? One sentence for a non-significant verdict."""
    d = found["ks_d"]
    d_text = "no KS D is significant at this n" if d is None else f"KS D >= {d:.2f} (found {found_d:.2f})"
    mde = found["median_difference"]
    if mde is None:
        return f"power: not measurable at this n ({d_text})"
    need = f"{found['power']:.0%} power needs |median difference| >= {mde:.4f}; {d_text}"
    if abs(median_found) < mde:
        return (
            f"power: a real effect the size found (median difference {median_found:+.4f}) would likely be missed "
            f"here ({need}), so this does not show there is none"
        )
    return (
        f"power: a real effect the size found (median difference {median_found:+.4f}) would likely have been "
        f"detected ({need})"
    )


def compare(errors_a, errors_b, *, alpha=ALPHA, n_boot=N_BOOT, seed=0):
    """KS test, which side has lower errors, the two effect sizes with intervals, and what is detectable.

    ``lower`` is 'b' when b's EDF lies above a's at the largest gap (b has
    lower errors), 'a' the other way, 'tie'; ``median_difference`` =
    median_b - median_a and ``edf_area`` = mean_a - mean_b, each {value, low,
    high} from `analysis.bootstrap_interval` (`n_boot`, `seed`).
    """
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    ks = analysis.ks_test(a, b)
    grid = np.unique(np.concatenate([a, b]))
    b_lower, a_lower = sup_difference(functools.partial(analysis.edf, a), functools.partial(analysis.edf, b), grid)
    median = analysis.bootstrap_interval(a, b, analysis.median_difference, n_boot=n_boot, seed=seed).as_dict()
    return {
        "n_a": int(a.size),
        "n_b": int(b.size),
        "ks_d": ks.statistic,
        "ks_p": ks.pvalue,
        "lower": "b" if b_lower > a_lower else ("a" if a_lower > b_lower else "tie"),
        "median_difference": median,
        "edf_area": analysis.bootstrap_interval(a, b, analysis.edf_area, n_boot=n_boot, seed=seed).as_dict(),
        "detectable": detectable(a.size, b.size, median, alpha=alpha),
    }


# --------------------------------------------------------------------------- the headline verdict at long training


def confirm_summary(confirm, reference, *, alpha=ALPHA, n_boot=N_BOOT, seed=0):
    """The headline comparison retested at the long schedule: both schedules on the same networks, and a result.

    `confirm` is {a, b, k, short_epochs, epochs, rows}: rows with ``space``,
    ``short_error`` (the study's) and ``long_error`` (None: that training
    failed, left out). `reference` is the study's own comparison of a and b
    (all its networks, short training), whose ``lower_errors`` names the side
    the verdict found lower. Result at the long schedule: "holds" when its KS
    test is significant (p < alpha) with the same side lower, "reverses" when
    significant with the other side lower, "not resolved" otherwise (or when
    the short comparison was a tie). None when a space has fewer than 2
    networks with a long error.
    """
    a, b = confirm["a"], confirm["b"]
    rows = [r for r in confirm["rows"] if _float_or_none(r.get("long_error")) is not None]
    by_space = {s: [r for r in rows if r["space"] == s] for s in (a, b)}
    if min(len(v) for v in by_space.values()) < 2:
        return None
    schedules = {}
    for name, key in (("short", "short_error"), ("long", "long_error")):
        schedules[name] = compare(
            [float(r[key]) for r in by_space[a]],
            [float(r[key]) for r in by_space[b]],
            alpha=alpha,
            n_boot=n_boot,
            seed=seed,
        )
        schedules[name]["epochs"] = confirm["short_epochs" if name == "short" else "epochs"]
    long = schedules["long"]
    side = {a: "a", b: "b"}.get(reference.get("lower_errors"), "tie")
    if long["ks_p"] < alpha and side != "tie" and long["lower"] == side:
        result = "holds"
    elif long["ks_p"] < alpha and side != "tie" and long["lower"] != "tie":
        result = "reverses"
    else:
        result = "not resolved"
    lower_name = {"a": a, "b": b}.get(long["lower"], "neither")
    if result == "holds":
        text = f"holds at {confirm['epochs']} epochs: {lower_name} has significantly lower errors there too"
    elif result == "reverses":
        text = f"reverses at {confirm['epochs']} epochs: {lower_name} has significantly lower errors there"
    else:
        text = (
            f"not resolved at {confirm['epochs']} epochs: no significant difference at this n "
            f"({power_text(long['median_difference']['value'], long['ks_d'], long['detectable'])})"
        )
    return {
        "a": a,
        "b": b,
        "k": confirm["k"],
        "short_epochs": confirm["short_epochs"],
        "epochs": confirm["epochs"],
        "reference_lower": reference.get("lower_errors"),
        "short": schedules["short"],
        "long": long,
        "result": result,
        "text": text,
        "rows": confirm["rows"],
    }
