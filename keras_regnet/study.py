"""The design-space study: sample each space, train every sample briefly, compare error distributions.

Why: the paper's claims (AnyNetX_A ~ B ~ C, C < D < E, E < RegNet in error)
are claims about *distributions* of networks, measured by training many
random samples of each space for a short fixed schedule and comparing their
error EDFs. `run_study` repeats that on the user's data:

    per space: a random search (keras_regnet.search) in the flop window, E epochs
        -> OUT/<space>/trials.csv              (resumable, distributable)
        -> OUT/trials.csv                      (every space's trainings, with seeds)
    noise floor, in the same worker pool:
        seed check: retrain K networks with a second seed  -> OUT/seed_check.csv
        proxy check: retrain K networks for 4E epochs      -> OUT/proxy_check.csv
    -> keras_regnet.report: OUT/report.md + OUT/summary.json + PNG figures

A trial's weights and data order come from the study's seed and the trial
alone (`trial_workers.trial_seed`), so the same study gives the same errors
whichever worker trains which trial.

Random search only (never Hyperband or Bayesian): any other tuner biases the
sample towards good networks and the EDF is no longer the space's. The error
is the *final-epoch* validation error (the paper's), not the best epoch's.
"""

import csv
import dataclasses
import math
import os
import time

import numpy as np

from keras_regnet import design_spaces, report, run_folder, search
from keras_regnet.validation import check_int, check_number

SPACES = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")

# The default study: 100 networks per space (at n = 100 the exact KS test detects D >= 0.19),
# each trained 5 epochs; its recipe was chosen by bench/study_recipe.py (bench/README.md,
# "Study recipe"): zero-init residual branches (the models' default), half of digits to train on
# and the other half (validation + test) scored, so that two seeds and a 4x longer training rank
# the networks alike (Spearman >= 0.7) and almost no training fails.
SAMPLES = 100
FLOPS = (0.5e6, 2e6)
# 32 px is the smallest input that the stem and 4 stride-2 stages accept.
STUDY_CONFIG = search.SearchConfig(
    epochs=5,
    image_size=32,
    batch_size=32,
    lr=0.05,
    validation_fraction=0.35,
    score_split="validation+test",
    out="runs/study",
    save_best=False,
)
PROXY_FACTOR = 4  # the proxy check retrains for this many times the epochs
PROXY_CHECK = 30  # networks retrained by the proxy check (0: off)
SEED_CHECK = 20  # networks retrained with a second seed (0: off)
FAIL_ABOVE = 0.2  # a training whose final error is above this failed (chance on digits is 0.9)

STUDY_FILE = "study.json"
PROXY_FILE = "proxy_check.csv"
SEED_FILE = "seed_check.csv"
TRIALS_FILE = "trials.csv"  # every space's trainings in one table, with their seeds


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


def run_study(
    spaces=SPACES,
    *,
    samples=SAMPLES,
    flops=FLOPS,
    proxy_check=PROXY_CHECK,
    seed_check=SEED_CHECK,
    fail_above=FAIL_ABOVE,
    config=None,
    **settings,
):
    """Run (or resume) the study; write the report. Returns `summary.json`'s dict (None for a worker).

    `config` is a `search.SearchConfig` (default `STUDY_CONFIG`); keyword
    `settings` replace its fields (``epochs=``, ``out=``, ``workers=``, ...).
    Each space is its own random search of `samples` trials in
    ``OUT/<space>``; with ``distributed`` the i-th space's oracle listens on
    ``oracle_port + i`` (chief and workers walk the spaces in the same order).
    Workers only train. `flops` (lo, hi) is every space's window; None keeps
    each space's own (a space given by name then has none). Then the noise
    floor: `seed_check` networks retrained with a second seed and
    `proxy_check` networks retrained for `PROXY_FACTOR` x the epochs (0: off),
    and the share of trainings per space whose error is above `fail_above`.
    """
    config = search.configure(STUDY_CONFIG if config is None else config, settings)
    if config.tuner != "random":
        raise ValueError(f"a study samples each space at random: tuner must be 'random', got {config.tuner!r}")
    check_int("samples (--samples)", samples, 2)
    for name, value in (("proxy_check (--proxy-check)", proxy_check), ("seed_check (--seed-check)", seed_check)):
        check_int(name, value, 0)
        if 0 < value < 3:
            raise ValueError(f"{name} needs K >= 3 models for a rank correlation (or 0: off), got {value}")
    fail_above = check_number("fail_above (--fail-above)", fail_above, 0, 1, min_open=True)
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
            "validation_fraction": config.validation_fraction,
            "score_split": config.score_split,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "seed": config.seed,
        },
        file=STUDY_FILE,
        what="a study (only --samples, --proxy-check, --seed-check and --fail-above may change)",
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
        f"study: {len(spaces)} spaces x {samples} samples x {_epochs(config.epochs)}, flops "
        f"{report.window_text(spaces[0].flops_window)}, {config.worker_count()} worker processes -> {out}",
        flush=True,
    )
    # Every training of the study validates only after its last epoch (the error the study reads), on
    # one thread: TensorFlow's CPU kernels round differently with 2 threads than with 1 (1e-5 after
    # one step, then amplified by training), so a fixed thread count keeps a trial's error the same
    # whatever --workers is.
    setup = dataclasses.replace(search.worker_setup(config), final_validation_only=True, threads=1)
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
            setup,
            workers=config.worker_count(),
            sequential=config.distributed == "worker",
        )
    if config.distributed == "worker":
        print(f"study: {time.perf_counter() - start:.0f} s", flush=True)
        return None
    trials = {}
    for i, (space, search_of_space) in enumerate(zip(spaces, prepared)):
        records = search.finish_search(search_of_space)
        errors = [e for e in (search.val_error(r) for r in records) if e is not None]
        text = f"error min {min(errors):.4f} median {float(np.median(errors)):.4f}" if errors else "no completed trial"
        print(
            f"[{i + 1}/{len(spaces)}] {space.name}: {len(errors)}/{len(records)} trials completed, {text}", flush=True
        )
        trials[space.name] = [
            dict(r, space=space.name, seed=trial_workers.trial_seed(config.seed, r["trial_id"]))
            for r in records
            if r.get("status") == "COMPLETED" and search.val_error(r) is not None
        ]
    write_trials_table(out, trials)
    names = [s.name for s in spaces]
    networks = {
        (name, str(t.trial_id)): {"values": dict(t.hyperparameters.values), "space": p.pool.space}
        for name, p in zip(names, prepared)
        for t in p.tuner.oracle.trials.values()
    }
    seed, proxy = run_checks(out, trials, networks, seed_check, proxy_check, setup=setup, config=config)
    print(f"study: {time.perf_counter() - start:.0f} s", flush=True)
    settings = {
        "spaces": names,
        "samples": samples,
        "epochs": config.epochs,
        "flops": _shared_window(spaces),
        "dataset": config.dataset,
        "image_size": int(ds.input_shape[0]),
        "trained_images": int(ds.num_examples["train"]),
        "scored_images": int(
            ds.num_examples["validation"] + (ds.num_examples["test"] if config.score_split != "validation" else 0)
        ),
        "score_split": config.score_split,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
        "proxy_check": proxy_check,
        "seed_check": seed_check,
        "fail_above": fail_above,
        "wall_seconds_this_run": round(time.perf_counter() - start, 1),
    }
    summary = report.write_report(out, trials, settings, proxy=proxy, seed_check=seed)
    print(f"report: {os.path.join(out, 'report.md')}", flush=True)
    return summary


def _epochs(n):
    return f"{n} epoch" + ("" if n == 1 else "s")


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


def write_trials_table(out, trials):
    """OUT/trials.csv: every completed training of every space (space, stage values, complexity, error, seed)."""
    rows = [row for name in trials for row in trials[name]]
    first = ["space", "trial_id", "val_error", "seed", "flops", "params", "acts"]
    columns = first + sorted({k for row in rows for k in row} - set(first) - {"message", "best_val_error"})
    run_folder.write_csv(os.path.join(out, TRIALS_FILE), columns, [{k: row.get(k) for k in columns} for row in rows])


# --------------------------------------------------------------------------- noise floor: seed and proxy checks


def pick_networks(rows, k, seed):
    """k rows drawn at random (seeded), taking the spaces in turn: every space is represented alike."""
    by_space = {}
    for row in sorted(rows, key=lambda r: (r["space"], str(r["trial_id"]))):
        by_space.setdefault(row["space"], []).append(row)
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(len(v))) for v in by_space.values()]
    lists = list(by_space.values())
    chosen = []
    while len(chosen) < k and any(queues):
        for queue, space_rows in zip(queues, lists):
            if queue and len(chosen) < k:
                chosen.append(space_rows[queue.pop(0)])
    return chosen


def _read_rows(path, keep):
    if not os.path.exists(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["space"], r["trial_id"]): r for r in csv.DictReader(f) if keep(r)}


def _final_error(result):
    accuracy = (result.get("history") or {}).get("val_accuracy", [None])[-1]
    return None if result.get("status") != "COMPLETED" or accuracy is None else 1.0 - float(accuracy)


def run_checks(out, trials, networks, seed_check, proxy_check, *, setup, config):
    """Retrain sampled networks in the worker pool: (seed check summary, proxy check summary), None when off.

    Seed check: `seed_check` networks retrained with a second seed (same
    recipe): how much of an error is the network, how much the draw. Proxy
    check: `proxy_check` networks retrained for `PROXY_FACTOR` x the epochs
    from the trial's own seed: does short training rank networks as longer
    training does. Both resume row by row from OUT/seed_check.csv and
    OUT/proxy_check.csv.
    """
    from keras_regnet import trial_workers

    rows = [row for name in trials for row in trials[name]]
    long_epochs = PROXY_FACTOR * config.epochs
    seed_path, proxy_path = os.path.join(out, SEED_FILE), os.path.join(out, PROXY_FILE)
    seed_rows = pick_networks(rows, seed_check, config.seed) if seed_check else []
    proxy_rows = pick_networks(rows, proxy_check, config.seed + 1) if proxy_check else []
    seed_done = _read_rows(seed_path, lambda r: int(r["epochs"]) == config.epochs)
    proxy_done = _read_rows(proxy_path, lambda r: int(r["epochs"]) == long_epochs)
    tasks = []
    for kind, chosen, done, epochs, replicate in (
        ("proxy", proxy_rows, proxy_done, long_epochs, 0),  # the long ones first: the pool ends evenly
        ("seed", seed_rows, seed_done, config.epochs, 1),
    ):
        for row in chosen:
            key = (row["space"], str(row["trial_id"]))
            if key in done:
                continue
            network = networks[key]
            task = {
                "kind": kind,
                "row": row,
                "trial_id": row["trial_id"],
                "values": network["values"],
                "space": network["space"],
                "epochs": epochs,
                "seed": trial_workers.trial_seed(config.seed, row["trial_id"], replicate),
            }
            if kind == "proxy":
                task["train_config"] = {"epochs": epochs}
            tasks.append(task)
    seed_fields = ["space", "trial_id", "flops", "error", "error_seed2", "seed2", "epochs", "seconds"]
    proxy_fields = ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"]
    counts = {"seed": 0, "proxy": 0}
    totals = {"seed": len(seed_rows), "proxy": len(proxy_rows)}

    def on_result(task, result):
        row, kind = task["row"], task["kind"]
        error = _final_error(result)
        key = (row["space"], str(row["trial_id"]))
        common = {"space": key[0], "trial_id": key[1], "flops": int(row["flops"])}
        seconds = round(float(result.get("seconds") or 0.0), 1)
        if kind == "seed":
            seed_done[key] = dict(
                common, error=row["val_error"], error_seed2=error, seed2=task["seed"], epochs=task["epochs"]
            )
            seed_done[key]["seconds"] = seconds
            _write_check(seed_path, seed_fields, seed_rows, seed_done)
            text = f"error {row['val_error']:.4f}, second seed {_text(error)}"
        else:
            proxy_done[key] = dict(common, short_error=row["val_error"], long_error=error, epochs=task["epochs"])
            proxy_done[key]["seconds"] = seconds
            _write_check(proxy_path, proxy_fields, proxy_rows, proxy_done)
            text = f"error {row['val_error']:.4f} after {config.epochs}, {_text(error)} after {task['epochs']} epochs"
        counts[kind] += 1
        done_before = totals[kind] - sum(1 for t in tasks if t["kind"] == kind)
        print(
            f"{kind} check {done_before + counts[kind]}/{totals[kind]} {key[0]} trial {key[1]}: {text} "
            f"({seconds:.0f} s)",
            flush=True,
        )

    if tasks:
        print(
            f"checks: {len(seed_rows)} networks with a second seed, {len(proxy_rows)} for {long_epochs} epochs",
            flush=True,
        )
        trial_workers.run_tasks(tasks, setup, workers=config.worker_count(), on_result=on_result)
    seed = None
    if seed_rows:
        pairs = [seed_done[(r["space"], str(r["trial_id"]))] for r in seed_rows]
        seed = report.seed_check_summary(
            [
                dict(p, error=float(p["error"]), error_seed2=float(p["error_seed2"]))
                for p in pairs
                if _number(p["error_seed2"]) is not None
            ]
        )
    proxy = None
    if proxy_rows:
        pairs = [proxy_done[(r["space"], str(r["trial_id"]))] for r in proxy_rows]
        proxy = report.proxy_summary(
            [p for p in pairs if _number(p["long_error"]) is not None], config.epochs, long_epochs
        )
    return seed, proxy


def _number(value):
    if value in (None, ""):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _text(error):
    return "failed" if error is None else f"{error:.4f}"


def _write_check(path, fields, chosen, done):
    keys = [(r["space"], str(r["trial_id"])) for r in chosen]
    run_folder.write_csv(path, fields, [done[k] for k in keys if k in done])
