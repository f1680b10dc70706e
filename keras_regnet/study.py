"""The design-space study: sample each space, train every sample briefly, compare error distributions.

Why: the paper's claims (AnyNetX_A ~ B ~ C, C < D < E, E < RegNet in error)
are claims about *distributions* of networks, measured by training many
random samples of each space for a short fixed schedule and comparing their
error EDFs. `run_study` repeats that on the user's data:

    per space: a random search (keras_regnet.search) in the flop window, E epochs
        -> OUT/<space>/trials.csv              (resumable, distributable)
    [proxy check: retrain K of them for 4E epochs -> OUT/proxy_check.csv]
    -> keras_regnet.report: OUT/report.md + OUT/summary.json + PNG figures

Random search only (never Hyperband or Bayesian): any other tuner biases the
sample towards good networks and the EDF is no longer the space's. The error
is the *final-epoch* validation error (the paper's), not the best epoch's.
"""

import csv
import dataclasses
import os
import time

import numpy as np

from keras_regnet import design_spaces, report, run_folder, search
from keras_regnet.validation import check_int

SPACES = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")

# The default study trains 6 x 50 networks: the fewest per space the paper's
# comparisons need (bench/README.md has the time it takes).
SAMPLES = 50
FLOPS = (0.5e6, 2e6)
# 32 px is the smallest input that the stem and 4 stride-2 stages accept; batch 32
# gives digits' 1,347 training images 43 steps an epoch.
STUDY_CONFIG = search.SearchConfig(epochs=5, image_size=32, batch_size=32, lr=0.05, out="runs/study", save_best=False)
PROXY_FACTOR = 4  # the proxy check retrains for this many times the epochs

STUDY_FILE = "study.json"
PROXY_FILE = "proxy_check.csv"


# --------------------------------------------------------------------------- arguments


def check_spaces(spaces):
    """Known, distinct design spaces: a sequence of names or DesignSpace objects (one name alone too).

    Objects (e.g. ``design_spaces.get("AnyNetX_A", depth=(1, 4))``) let the
    Python API study narrowed spaces; they are compared under their name.
    """
    spaces = [spaces] if isinstance(spaces, (str, design_spaces.DesignSpace)) else list(spaces or ())
    if not spaces:
        raise ValueError(f"--spaces is empty; choose from {', '.join(design_spaces.names())}")
    for space in spaces:
        if not isinstance(space, design_spaces.DesignSpace) and space not in design_spaces.names():
            raise ValueError(
                f"unknown design space {space!r} in --spaces; choose from {', '.join(design_spaces.names())}"
            )
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


# --------------------------------------------------------------------------- running


def run_study(spaces=SPACES, *, samples=SAMPLES, flops=FLOPS, proxy_check=0, config=None, **settings):
    """Run (or resume) the study; write the report. Returns `summary.json`'s dict (None for a worker).

    `config` is a `search.SearchConfig` (default `STUDY_CONFIG`); keyword
    `settings` replace its fields (``epochs=``, ``out=``, ``workers=``, ...).
    Each space is its own random search of `samples` trials in
    ``OUT/<space>``; with ``distributed`` the i-th space's oracle listens on
    ``oracle_port + i`` (chief and workers walk the spaces in the same order).
    Workers only train. `flops` (lo, hi) is every space's window; None keeps
    each space's own (a space given by name then has none).
    """
    config = search.configure(STUDY_CONFIG if config is None else config, settings)
    if config.tuner != "random":
        raise ValueError(f"a study samples each space at random: tuner must be 'random', got {config.tuner!r}")
    check_int("samples (--samples)", samples, 2)
    check_int("proxy_check (--proxy-check)", proxy_check, 0)
    if 0 < proxy_check < 3:
        raise ValueError(f"--proxy-check needs K >= 3 models for a rank correlation (or 0: off), got {proxy_check}")
    config = dataclasses.replace(config, max_trials=samples, save_best=False)
    spaces = [with_window(s, flops) for s in check_spaces(spaces)]
    out = os.fspath(config.out)
    run_folder.claim(
        out,
        {
            "spaces": [s.describe() for s in spaces],
            "epochs": config.epochs,
            "dataset": config.dataset,
            "image_size": config.image_size,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "seed": config.seed,
        },
        file=STUDY_FILE,
        what="a study (only --samples and --proxy-check may change)",
    )
    from keras_regnet import trial_workers, tuning  # (KerasTuner loads TensorFlow: after the checks)

    ds = config.load_data()
    start = time.perf_counter()
    prepared = []  # (prepare_search checks each window at the data's shape: all before any training)
    for i, space in enumerate(spaces):
        space_config = dataclasses.replace(
            config, out=os.path.join(out, space.name), oracle_port=config.oracle_port + i
        )
        tuning.set_distributed(
            config.distributed,
            oracle_host=config.oracle_host,
            oracle_port=space_config.oracle_port,
            worker_id=config.worker_id,
        )
        prepared.append(search.prepare_search(space, ds, space_config, name=space.name))
    print(
        f"study: {len(spaces)} spaces x {samples} samples x {config.epochs} epochs, flops "
        f"{report.window_text(spaces[0].flops_window)}, {config.worker_count()} worker processes -> {out}",
        flush=True,
    )
    if config.distributed == "chief":  # serve each space's oracle in turn; the workers train
        for search_of_space in prepared:
            tuning.set_distributed(
                "chief", oracle_host=config.oracle_host, oracle_port=search_of_space.config.oracle_port
            )
            search.serve(search_of_space)
    else:
        # One pool for every space: no worker idles at the boundary between two spaces. A
        # distributed worker follows the chief, which serves one space at a time.
        trial_workers.run_searches(
            [p.pool for p in prepared],
            search.worker_setup(config),
            workers=config.worker_count(),
            sequential=config.distributed == "worker",
        )
    print(f"study: {time.perf_counter() - start:.0f} s", flush=True)
    if config.distributed == "worker":
        return None
    for i, (space, search_of_space) in enumerate(zip(spaces, prepared)):
        records = search.finish_search(search_of_space)
        errors = [e for e in (search.val_error(r) for r in records) if e is not None]
        text = f"error min {min(errors):.4f} median {float(np.median(errors)):.4f}" if errors else "no completed trial"
        print(
            f"[{i + 1}/{len(spaces)}] {space.name}: {len(errors)}/{len(records)} trials completed, {text}", flush=True
        )
    names = [s.name for s in spaces]
    proxy = None
    if proxy_check:
        proxy = run_proxy_check(out, names, proxy_check, ds=ds, config=config)
    settings = {
        "spaces": names,
        "samples": samples,
        "epochs": config.epochs,
        "flops": _shared_window(spaces),
        "dataset": config.dataset,
        "image_size": int(ds.input_shape[0]),
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
        "proxy_check": proxy_check,
        "wall_seconds_this_run": round(time.perf_counter() - start, 1),
    }
    summary = report.write_report(out, load_trials(out, names), settings, proxy=proxy)
    print(f"report: {os.path.join(out, 'report.md')}", flush=True)
    return summary


def _shared_window(spaces):
    """The flop window shared by all spaces (None if they differ or have none)."""
    windows = {s.flops_window for s in spaces}
    if len(windows) != 1 or None in windows:
        return None
    lo, hi = windows.pop()
    return [lo, None if hi == float("inf") else hi]


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
                    if row.get("status") == "COMPLETED" and search.val_error(row) is not None:
                        rows.append(dict(row, val_error=search.val_error(row), flops=float(row["flops"])))
        result[name] = rows
    return result


# --------------------------------------------------------------------------- proxy check


def pick_spread(rows, k):
    """k rows spread evenly over the error range (sorted by error, then space and id): deterministic."""
    ordered = sorted(rows, key=lambda r: (r["val_error"], r["space"], str(r["trial_id"])))
    if k >= len(ordered):
        return ordered
    index = np.unique(np.round(np.linspace(0, len(ordered) - 1, k)).astype(int))
    return [ordered[i] for i in index]


def run_proxy_check(out, spaces, k, *, ds, config):
    """Retrain k study models for PROXY_FACTOR x `config.epochs`; OUT/proxy_check.csv (resumes row by row).

    The short error is the study's; the long one comes from a fresh training
    (same recipe, more epochs, seeded) of the same network.
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
    epochs = PROXY_FACTOR * config.epochs
    done = {}
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as f:
            done = {(r["space"], r["trial_id"]): r for r in csv.DictReader(f) if int(r["epochs"]) == epochs}
    recipe = dataclasses.replace(config, epochs=epochs).train_config()
    fields = ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"]
    for i, row in enumerate(chosen):
        key = (row["space"], str(row["trial_id"]))
        if key in done:
            continue
        spec = tuning.spec_from_values(row)
        keras.backend.clear_session()
        keras.utils.set_random_seed(config.seed)
        began = time.perf_counter()
        model = AnyNet(spec, input_shape=ds.input_shape, classes=ds.num_classes)
        training.compile_model(model, recipe, ds.steps_per_epoch)
        history = model.fit(ds.train, validation_data=ds.validation, epochs=epochs, shuffle=False, verbose=0)
        long_error = 1.0 - float(history.history["val_accuracy"][-1])
        done[key] = {
            "space": key[0],
            "trial_id": key[1],
            "flops": int(row["flops"]),
            "short_error": row["val_error"],
            "long_error": long_error,
            "epochs": epochs,
            "seconds": round(time.perf_counter() - began, 1),
        }
        run_folder.write_csv(
            path,
            fields,
            [done[(r["space"], str(r["trial_id"]))] for r in chosen if (r["space"], str(r["trial_id"])) in done],
        )
        print(
            f"proxy {i + 1}/{len(chosen)} {key[0]} trial {key[1]}: error {row['val_error']:.4f} after "
            f"{config.epochs} epochs, {long_error:.4f} after {epochs} "
            f"({done[key]['seconds']:.0f} s)",
            flush=True,
        )
    return report.proxy_summary([done[(r["space"], str(r["trial_id"]))] for r in chosen], config.epochs, epochs)
