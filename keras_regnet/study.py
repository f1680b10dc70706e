"""The design-space study: sample, train briefly, compare error distributions.

Why: the paper's claims (AnyNetX_A ~ B ~ C, C < D < E, E < RegNet in error)
are claims about *distributions* of networks, measured by training many
random samples of each space for a short fixed schedule and comparing their
error EDFs. `run_study` repeats that on the user's data:

    per space: tuning.run_search(random sampling, the flop window, E epochs)
        -> OUT/<space>/trials.csv              (resumable, distributable)
    [proxy check: retrain K of them for 4E epochs -> OUT/proxy_check.csv]
    -> OUT/report.md + OUT/summary.json + PNG figures

Random search only (never Hyperband or Bayesian): any other tuner biases the
sample towards good networks and the EDF is no longer the space's. The error
is the *final-epoch* validation error (the paper's), not the best epoch's.

The statistics (`summarize`) are pure numpy/scipy and run without TensorFlow.
"""

import csv
import json
import math
import os
import time

import numpy as np

from keras_regnet import analysis, design_spaces
from keras_regnet import records as records_lib

SPACES = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")

# The default study trains 6 x 50 networks: the fewest per space the paper's
# comparisons need (see bench/README.md for the measured time on 2 cores).
SAMPLES = 50
EPOCHS = 5
FLOPS = (0.5e6, 2e6)
IMAGE_SIZE = 32  # the smallest input 4 stride-2 stages + the stem accept
BATCH_SIZE = 32  # digits has 1,347 training images: 43 steps per epoch
LR = 0.05
PROXY_FACTOR = 4  # the proxy check retrains for this many times the epochs

ALPHA = 0.05  # significance level of the verdicts

# (space a, space b, what the paper found, the paper's expectation for b vs a)
PAPER_PAIRS = (
    ("AnyNetX_A", "AnyNetX_B", "sharing one bottleneck ratio b across stages costs no accuracy", "same"),
    ("AnyNetX_B", "AnyNetX_C", "sharing one group width g across stages costs no accuracy", "same"),
    ("AnyNetX_C", "AnyNetX_D", "non-decreasing widths lower the error", "better"),
    ("AnyNetX_D", "AnyNetX_E", "non-decreasing depths lower the error", "better"),
    ("AnyNetX_E", "RegNet", "RegNet's distribution of errors is better than AnyNetX_E's", "better"),
)

STUDY_FILE = "study.json"
PROXY_FILE = "proxy_check.csv"
FIGURES = {
    "panels": "edf_panels.png",
    "edfs": "edfs.png",
    "flops": "error_vs_flops.png",
    "staircase": "width_staircase.png",
    "proxy": "proxy_check.png",
}


# --------------------------------------------------------------------------- arguments

def check_spaces(spaces):
    """Known, distinct design spaces: a comma string of names, or a sequence of names/DesignSpace objects.

    Objects (e.g. ``design_spaces.get("AnyNetX_A", depth=(1, 4))``) let the
    Python API study narrowed spaces; they are compared under their name.
    """
    if isinstance(spaces, str):
        spaces = [s.strip() for s in spaces.split(",") if s.strip()]
    spaces = list(spaces or ())
    if not spaces:
        raise ValueError(f"--spaces is empty; choose from {', '.join(design_spaces.names())}")
    for space in spaces:
        if not isinstance(space, design_spaces.DesignSpace) and space not in design_spaces.names():
            raise ValueError(f"unknown design space {space!r} in --spaces; choose from "
                             f"{', '.join(design_spaces.names())}")
    names = [_name(s) for s in spaces]
    if len(set(names)) != len(names):
        raise ValueError(f"--spaces names a space twice: {','.join(names)}")
    return tuple(spaces)


def _name(space):
    return space.name if isinstance(space, design_spaces.DesignSpace) else space


def with_window(space, window):
    """The space (by name or object) with the flop window (None keeps an object's own window)."""
    if isinstance(space, design_spaces.DesignSpace):
        config = space.to_dict()
        if window is not None:
            config["flops"] = window
        return design_spaces.get(**config)
    return design_spaces.get(space, flops=window)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_window(flops):
    """(lo, hi) flops with 0 <= lo < hi (hi may be None: open); a text 'LO:HI' is parsed."""
    if isinstance(flops, str):
        from keras_regnet.tuning import parse_window

        flops = parse_window(flops, "--flops")
    if flops is None:
        return None
    lo, hi = flops
    if lo is None or lo < 0 or (hi is not None and hi <= lo):
        raise ValueError(f"--flops window {flops!r} is empty: it needs 0 <= LO < HI")
    return (float(lo), None if hi is None else float(hi))


def _window_text(window):
    if window is None:
        return "none"
    lo, hi = window
    return f"{lo / 1e6:g}M:{'' if hi is None or math.isinf(hi) else f'{hi / 1e6:g}M'}"


# --------------------------------------------------------------------------- running

def run_study(*, spaces=SPACES, samples=SAMPLES, epochs=EPOCHS, flops=FLOPS, dataset="digits",
              data_dir=None, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE, lr=LR, out="runs/study",
              seed=0, proxy_check=0, distributed=None, oracle_host="127.0.0.1", oracle_port=8000,
              worker_id=None, workers=None, verbose=0):
    """Run (or resume) the study; write the report. Returns `summary.json`'s dict (None for a worker).

    Each space is its own KerasTuner random search in ``OUT/<space>``; with
    ``distributed`` the i-th space's oracle listens on ``oracle_port + i``
    (chief and workers walk the spaces in the same order). Workers only train.
    `flops` None keeps each space's own window (names: no window).
    """
    from keras_regnet import data as data_lib
    from keras_regnet import training, trial_workers, tuning

    workers = trial_workers.check_workers(trial_workers.default_workers() if workers is None else workers)
    spaces = [with_window(s, check_window(flops)) for s in check_spaces(spaces)]
    _check_int("--samples", samples, 2)
    _check_int("--epochs", epochs, 1)
    _check_int("--proxy-check", proxy_check, 0)
    if 0 < proxy_check < 3:
        raise ValueError(f"--proxy-check needs K >= 3 models for a rank correlation (or 0: off), got {proxy_check}")
    names = [s.name for s in spaces]
    identity = {"spaces": [s.describe() for s in spaces], "epochs": epochs, "dataset": dataset,
                "image_size": image_size, "batch_size": batch_size, "lr": lr, "seed": seed}
    _check_study_dir(out, identity)
    # Every window must be satisfiable at the data's shape before any training.
    ds = data_lib.load(dataset, image_size=image_size, batch_size=batch_size, data_dir=data_dir, seed=seed)
    for space in spaces:
        design_spaces.get(**{**space.to_dict(), "input_shape": tuple(ds.input_shape),
                             "classes": ds.num_classes}).sample(np.random.default_rng(seed))

    config = training.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, verbose=0)
    start = time.perf_counter()
    prepared = []
    for i, space in enumerate(spaces):
        where = os.path.join(out, space.name)
        tuning.set_distributed(distributed, oracle_host=oracle_host, oracle_port=oracle_port + i,
                               worker_id=worker_id)
        prepared.append(tuning.prepare_search(
            space, ds, tuner="random", max_trials=samples, epochs=epochs, out=where, seed=seed,
            train_config=config, dataset=dataset, batch_size=batch_size, save_best=False, name=space.name))
    print(f"study: {len(spaces)} spaces x {samples} samples x {epochs} epochs, flops "
          f"{_window_text(spaces[0].flops)}, {workers} worker processes -> {out}", flush=True)
    if distributed == "chief":  # serve each space's oracle in turn; the workers train
        for i, search in enumerate(prepared):
            tuning.set_distributed("chief", oracle_host=oracle_host, oracle_port=oracle_port + i)
            tuning.serve(search)
    else:
        setup = tuning.worker_setup(dataset=dataset, data_dir=data_dir, image_size=image_size,
                                    batch_size=batch_size, seed=seed, train_config=config, workers=workers)
        # One pool for every space: no worker idles at the boundary between two spaces. A
        # distributed worker follows the chief, which serves one space at a time.
        trial_workers.run_searches([p.pool for p in prepared], setup, workers=workers,
                                   sequential=distributed == "worker")
    for i, (space, search) in enumerate(zip(spaces, prepared)):
        if distributed == "worker":
            break
        records = tuning.finish_search(search, os.path.join(out, space.name), save_best=False)
        errors = [e for e in (records_lib.val_error(r) for r in records) if e is not None]
        text = (f"error min {min(errors):.4f} median {float(np.median(errors)):.4f}" if errors
                else "no completed trial")
        print(f"[{i + 1}/{len(spaces)}] {space.name}: {len(errors)}/{len(records)} trials completed, {text}",
              flush=True)
    print(f"study: {time.perf_counter() - start:.0f} s", flush=True)
    if distributed == "worker":
        return None
    proxy = None
    if proxy_check:
        proxy = run_proxy_check(out, names, proxy_check, ds=ds, epochs=PROXY_FACTOR * epochs,
                                batch_size=batch_size, lr=lr, seed=seed)
    settings = {"spaces": names, "samples": samples, "epochs": epochs, "flops": _windows(spaces),
                "dataset": dataset, "image_size": int(ds.input_shape[0]), "batch_size": batch_size, "lr": lr,
                "seed": seed, "proxy_check": proxy_check,
                "wall_seconds_this_run": round(time.perf_counter() - start, 1)}
    summary = write_report(out, load_trials(out, names), settings, proxy=proxy)
    print(f"report: {os.path.join(out, 'report.md')}", flush=True)
    return summary


def _windows(spaces):
    """The flop window shared by all spaces (None if they differ or have none)."""
    windows = {s.flops for s in spaces}
    if len(windows) != 1 or None in windows:
        return None
    lo, hi = windows.pop()
    return [lo, None if math.isinf(hi) else hi]


def _check_study_dir(out, identity):
    """One folder holds one study; a different one would mix incomparable errors."""
    path = os.path.join(out, STUDY_FILE)
    identity = json.loads(json.dumps(identity))
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != identity:
            changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
            raise ValueError(f"--out {out} holds a study with other settings ({', '.join(changed)}); "
                             "use another --out folder (only --samples and --proxy-check may change)")
        return
    os.makedirs(out, exist_ok=True)
    records_lib.write_json(path, identity)


# --------------------------------------------------------------------------- trials

def load_trials(out, spaces):
    """{space: completed trial rows (dicts, val_error and flops as floats)} from OUT/<space>/trials.csv."""
    result = {}
    for name in spaces:
        path = os.path.join(out, name, "trials.csv")
        rows = []
        if os.path.exists(path):
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    if row.get("status") == "COMPLETED" and records_lib.val_error(row) is not None:
                        rows.append(dict(row, val_error=records_lib.val_error(row), flops=float(row["flops"])))
        result[name] = rows
    return result


def per_block_widths(row):
    """The per-block widths of a trial row (each stage's width repeated depth times)."""
    widths, i = [], 1
    while f"depth_{i}" in row and row[f"depth_{i}"] not in ("", None):
        widths += [int(float(row[f"width_{i}"]))] * int(float(row[f"depth_{i}"]))
        i += 1
    return widths


# --------------------------------------------------------------------------- statistics

def _bins(errors_by_space):
    """Shared complexity bins: ~5 models per bin and space, between 1 and 10 bins."""
    smallest = min(len(e) for e in errors_by_space.values())
    return max(1, min(10, smallest // 5))


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


def minimum_detectable_d(n, m, alpha=ALPHA):
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


def _sup_difference(curve_a, curve_b, points):
    """max(F_b - F_a) and max(F_a - F_b) over `points` (strict EDFs, both sides of each jump)."""
    at = np.concatenate([points, np.nextafter(points, np.inf)])
    diff = curve_b(at) - curve_a(at)
    return float(max(diff.max(), 0.0)), float(max((-diff).max(), 0.0))


def verdict(expect, ks_p, lower, n_a, n_b, alpha=ALPHA):
    """Honest wording of one comparison: agree only when significant in the paper's direction."""
    sig = ks_p < alpha
    smallest = minimum_detectable_d(n_a, n_b, alpha)
    caveat = (f"n={n_a} vs {n_b}: no KS D is significant at p<{alpha} with so few models" if smallest is None
              else f"n={n_a} vs {n_b}: only KS D >= {smallest:.2f} is detectable at p<{alpha} (exact test)")
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
            "n": int(e.size), "min": float(e.min()), "median": float(np.median(e)), "mean": float(e.mean()),
            "normalized_mean": float(np.sum(weights[k] * e)),
            "flops_min": float(flops[k].min()), "flops_max": float(flops[k].max()),
            "edf": [float(v) for v in analysis.edf(e, at=levels)],
            "normalized_edf": [float(v) for v in analysis.normalized_edf(
                e, flops[k], bins, at=levels, complexity_range=crange)],
        }
    comparisons = []
    for a, b, finding, expect in pairs:
        if a not in errs or b not in errs:
            continue
        ks = analysis.ks_test(errs[a], errs[b])
        grid = np.unique(np.concatenate([errs[a], errs[b]]))
        b_lower, a_lower = _sup_difference(lambda x: analysis.edf(errs[a], at=x),
                                           lambda x: analysis.edf(errs[b], at=x), grid)
        nb_lower, na_lower = _sup_difference(
            lambda x: analysis.normalized_edf(errs[a], flops[a], bins, at=x, complexity_range=crange),
            lambda x: analysis.normalized_edf(errs[b], flops[b], bins, at=x, complexity_range=crange), grid)
        lower = "b" if b_lower > a_lower else ("a" if a_lower > b_lower else "tie")
        outcome, detail = verdict(expect, ks.pvalue, lower, errs[a].size, errs[b].size, alpha)
        comparisons.append({
            "a": a, "b": b, "paper": finding, "expect": expect, "ks_d": ks.statistic, "ks_p": ks.pvalue,
            "lower_errors": {"b": b, "a": a}.get(lower, "tie"), "normalized_d": max(nb_lower, na_lower),
            "median_a": spaces[a]["median"], "median_b": spaces[b]["median"],
            "verdict": outcome, "detail": detail,
        })
    return {"bins": bins, "flops_range": list(crange), "error_levels": levels, "alpha": alpha,
            "spaces": spaces, "comparisons": comparisons}


# --------------------------------------------------------------------------- proxy check

def pick_spread(rows, k):
    """k rows spread evenly over the error range (sorted by error, then space and id): deterministic."""
    ordered = sorted(rows, key=lambda r: (r["val_error"], r["space"], str(r["trial_id"])))
    if k >= len(ordered):
        return ordered
    index = np.unique(np.round(np.linspace(0, len(ordered) - 1, k)).astype(int))
    return [ordered[i] for i in index]


def spearman(short, long):
    """(rho, p) of scipy.stats.spearmanr; rho is NaN when either side is constant."""
    from scipy import stats

    res = stats.spearmanr(short, long)
    return float(res[0]), float(res[1])


def run_proxy_check(out, spaces, k, *, ds, epochs, batch_size, lr, seed):
    """Retrain k study models for `epochs` epochs; OUT/proxy_check.csv (resumes row by row).

    The short error is the study's; the long one comes from a fresh training
    (same recipe, `epochs` epochs, seeded) of the same network.
    """
    import keras

    from keras_regnet import training, tuning
    from keras_regnet.models import AnyNet

    trials = load_trials(out, spaces)
    rows = [dict(r, space=name) for name in spaces for r in trials[name]]
    if len(rows) < 3:
        raise ValueError(f"the proxy check needs >= 3 completed trials, the study has {len(rows)}")
    chosen = pick_spread(rows, k)
    path = os.path.join(out, PROXY_FILE)
    done = {}
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as f:
            done = {(r["space"], r["trial_id"]): r for r in csv.DictReader(f) if int(r["epochs"]) == epochs}
    config = training.TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, verbose=0)
    fields = ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"]
    for i, row in enumerate(chosen):
        key = (row["space"], str(row["trial_id"]))
        if key in done:
            continue
        spec = tuning.spec_from_values(row)
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        began = time.perf_counter()
        model = AnyNet(spec, input_shape=ds.input_shape, classes=ds.num_classes)
        training.compile_model(model, config, ds.steps_per_epoch)
        history = model.fit(ds.train, validation_data=ds.validation, epochs=epochs, verbose=0)
        long_error = 1.0 - float(history.history["val_accuracy"][-1])
        done[key] = {"space": key[0], "trial_id": key[1], "flops": int(row["flops"]),
                     "short_error": row["val_error"], "long_error": long_error, "epochs": epochs,
                     "seconds": round(time.perf_counter() - began, 1)}
        records_lib.write_csv(path, fields, [done[(r["space"], str(r["trial_id"]))] for r in chosen
                                   if (r["space"], str(r["trial_id"])) in done])
        print(f"proxy {i + 1}/{len(chosen)} {key[0]} trial {key[1]}: error {row['val_error']:.4f} after "
              f"{epochs // PROXY_FACTOR} epochs, {long_error:.4f} after {epochs} "
              f"({done[key]['seconds']:.0f} s)", flush=True)
    return proxy_summary([done[(r["space"], str(r["trial_id"]))] for r in chosen], epochs)


def proxy_summary(rows, epochs):
    short = [float(r["short_error"]) for r in rows]
    long = [float(r["long_error"]) for r in rows]
    rho, p = spearman(short, long)
    return {"k": len(rows), "epochs": epochs, "spearman": rho, "p": p, "rows": rows}




# --------------------------------------------------------------------------- report

def make_figures(out, trials, stats, proxy=None, best=3):
    """The PNGs (file name -> path); figures needing two spaces are skipped with one."""
    errs = {k: [r["val_error"] for r in v] for k, v in trials.items() if v}
    flops = {k: [r["flops"] for r in v] for k, v in trials.items() if v}
    paths, bins = {}, stats["bins"]
    pairs = [(c["a"], c["b"]) for c in stats["comparisons"]]
    if pairs:
        paths["panels"] = analysis.plot_edf_panels(
            errs, os.path.join(out, FIGURES["panels"]), pairs=pairs, complexity_by_space=flops, bins=bins,
            title="Complexity-normalized error EDFs (KS on the raw errors)")
    paths["edfs"] = analysis.plot_edfs(errs, os.path.join(out, FIGURES["edfs"]),
                                       title="Complexity-normalized error EDFs", complexity_by_space=flops,
                                       bins=bins)
    paths["flops"] = analysis.plot_error_vs_flops(errs, flops, os.path.join(out, FIGURES["flops"]))
    top = sorted(((r["val_error"], k, r) for k, v in trials.items() for r in v), key=lambda t: t[:2])[:best]
    widths = [per_block_widths(r) for _, _, r in top]
    w0_high = max(256, max(w[0] for w in widths))
    paths["staircase"] = analysis.plot_width_staircase(
        widths, os.path.join(out, FIGURES["staircase"]),
        labels=[f"{k} #{r['trial_id']} err {e:.3f}" for e, k, r in top],
        title=f"Per-block widths of the {len(top)} best models, with the RegNet fit",
        w_0_range=(8, w0_high))
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
    ax.set_xlabel(f"error after {proxy['epochs'] // PROXY_FACTOR} epochs (study)")
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
    summary = {"settings": settings, **stats, "proxy_check": proxy,
               "figures": {k: os.path.basename(p) for k, p in figures.items()},
               "missing": [k for k, v in trials.items() if not v]}
    records_lib.write_text(os.path.join(out, "summary.json"), json.dumps(summary, indent=2, default=float) + "\n")
    records_lib.write_text(os.path.join(out, "report.md"), render_report(summary))
    return summary


def render_report(summary):
    """report.md text from a summary dict."""
    s, st = summary["settings"], summary["spaces"]
    lines = [
        "# Design-space study", "",
        f"{s['samples']} networks sampled per space (random sampling, never Hyperband) in the flop window "
        f"{_window_text(s['flops'])} at {s['image_size']}x{s['image_size']}, each trained {s['epochs']} epochs "
        f"(batch {s['batch_size']}, peak lr {s['lr']}, warm-up + cosine) on `{s['dataset']}`; error = "
        f"final-epoch validation error. Seed {s['seed']}.", "",
        "| space | n | min | median | mean | normalized mean | flops range |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, v in st.items():
        lines.append(f"| {name} | {v['n']} | {v['min']:.4f} | {v['median']:.4f} | {v['mean']:.4f} | "
                     f"{v['normalized_mean']:.4f} | {v['flops_min'] / 1e6:.2f}M - {v['flops_max'] / 1e6:.2f}M |")
    for name in summary.get("missing", []):
        lines.append(f"| {name} | 0 | - | - | - | - | - |")
    levels = summary["error_levels"]
    binning = (f"models weighted so each of {summary['bins']} shared log-flops bins counts equally"
               if summary["bins"] > 1 else "too few models to bin by flops, so equal to the plain EDF")
    lines += ["", f"Error EDF F(e) = fraction of models with error < e (normalized: {binning}):", "",
              "| space | " + " | ".join(f"F({e:g})" for e in levels) + " | "
              + " | ".join(f"normalized F({e:g})" for e in levels) + " |",
              "|---|" + "---:|" * (2 * len(levels))]
    for name, v in st.items():
        lines.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v["edf"]) + " | "
                     + " | ".join(f"{x:.3f}" for x in v["normalized_edf"]) + " |")
    lines += ["", "## The paper's comparisons", "",
              f"Two-sample Kolmogorov-Smirnov test on the raw errors (significance level {summary['alpha']}); "
              "'lower errors' is the space whose EDF lies above at the largest gap; normalized D is the largest "
              "gap between the complexity-normalized EDFs.", "",
              "| comparison | paper found | KS D | p | lower errors | normalized D | this run |",
              "|---|---|---:|---:|---|---:|---|"]
    for c in summary["comparisons"]:
        lines.append(f"| {c['a']} vs {c['b']} | {c['paper']} | {c['ks_d']:.3f} | {c['ks_p']:.3g} | "
                     f"{c['lower_errors']} | {c['normalized_d']:.3f} | **{c['verdict']}**: {c['detail']} |")
    if not summary["comparisons"]:
        lines.append("| - | (needs both spaces of a pair) | | | | | |")
    proxy = summary.get("proxy_check")
    if proxy:
        short_epochs = proxy["epochs"] // PROXY_FACTOR
        lines += ["", "## Proxy check", "",
                  f"{proxy['k']} study models retrained for {proxy['epochs']} epochs ({PROXY_FACTOR}x): Spearman "
                  f"rank correlation between the {short_epochs}-epoch and {proxy['epochs']}-epoch errors "
                  f"rho = {proxy['spearman']:.3f} (p = {proxy['p']:.3g}). The paper assumes short training ranks "
                  "networks as long training does; a rho near 1 supports that on this data.", "",
                  "| space | trial | flops | short error | long error |", "|---|---|---:|---:|---:|"]
        for r in proxy["rows"]:
            lines.append(f"| {r['space']} | {r['trial_id']} | {int(float(r['flops'])) / 1e6:.2f}M | "
                         f"{float(r['short_error']):.4f} | {float(r['long_error']):.4f} |")
    titles = {"panels": "EDF panels (the paper's pairs)", "edfs": "All spaces", "flops": "Error vs flops",
              "staircase": "Widths of the best models", "proxy": "Proxy check"}
    lines += ["", "## Figures", ""]
    for key, name in summary["figures"].items():
        lines += [f"### {titles[key]}", "", f"![{titles[key]}]({name})", ""]
    lines += ["## Caveats", "",
              "- Small samples: the paper used ~500 models per space; with the n above only large "
              "distribution shifts are significant, so 'inconclusive' is not evidence of no effect.",
              "- Short training and a small validation set make each error noisy (the proxy check measures "
              "how well short errors rank networks here).", ""]
    return "\n".join(lines)
