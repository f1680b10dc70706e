"""The design-space study: sample each space, train every sample briefly, compare error distributions.

Why: the paper's claims (AnyNetX_A ~ B ~ C, C < D < E, E < RegNet in error)
are claims about *distributions* of networks, measured by training many
random samples of each space for a short fixed schedule and comparing their
error EDFs. `run_study` repeats that on the user's data:

    per space: a random search (keras_regnet.search) in the flop window, E epochs
        -> OUT/<space>/trials.csv              (resumable, distributable)
        -> OUT/trials.csv                      (every space's trainings, with seeds)
    noise floor, in the same worker pool:
        seed check: retrain K networks with a second seed          -> OUT/seed_check.csv
        proxy check: retrain K networks for 4E epochs, two seeds   -> OUT/proxy_check.csv
        confirm: K networks of AnyNetX_A and of RegNet for 4E      -> OUT/confirm_check.csv
            (the proxy check's trainings reused where the networks are the same)
    -> keras_regnet.report: OUT/report.md + OUT/summary.json + PNG figures
       (keras_regnet.study_checks: which case the run is in, the retested verdict, power)

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
# each trained 5 epochs. Its recipe was chosen by bench/study_recipe.py's criteria, stated before
# looking, then cost (bench/README.md, "Study recipe"): at most 5% failed trainings per space, two
# seeds and a 4x longer training ranking the networks alike (Spearman >= 0.7). Fashion-MNIST with a
# fixed stratified 6,000 of its training images trained on and every other image scored (64,000)
# met them (0% / 0.90 / 0.73 on a panel of 12); digits, the embedded data, never met the last two.
SAMPLES = 100
FLOPS = (0.5e6, 2e6)
# 32 px is the smallest input that the stem and 4 stride-2 stages accept.
STUDY_CONFIG = search.SearchConfig(
    epochs=5,
    dataset="fashion_mnist",
    image_size=32,
    train_examples=6000,
    batch_size=32,
    lr=0.05,
    validation_fraction=0.1,
    score_split="validation+test",
    out="runs/study",
    save_best=False,
)
# `--quick`: the embedded digits (no files to fetch), half of them trained on (899 images) and the
# other half scored (898), the previous default: its errors rank networks less well (its report says
# which case it is in), at about a quarter of the default's cost.
QUICK_CONFIG = dataclasses.replace(
    STUDY_CONFIG, dataset="digits", train_examples=None, validation_fraction=0.35, out="runs/study-quick"
)
PROXY_FACTOR = 4  # the proxy check retrains for this many times the epochs
PROXY_CHECK = 30  # networks retrained by the proxy check, each with two seeds (0: off)
SEED_CHECK = 20  # networks retrained with a second seed (0: off)
# Networks per space of the headline comparison retrained for PROXY_FACTOR x the epochs (0: off). At
# 15 vs 15 the exact KS test detects only D >= 0.53 (docs/study-quick's 5-epoch A vs RegNet: D 0.52), so a
# shift that size may stay "not resolved"; 20 detect D >= 0.45, 30 D >= 0.37 (5 and 15 more long
# trainings per space).
CONFIRM = 15
HEADLINE = ("AnyNetX_A", "RegNet")  # the paper's end-to-end claim, retested at long training
FAIL_ABOVE = 0.2  # a training whose final error is above this failed (chance on digits is 0.9)
# Per dataset where 0.2 would count working networks: small networks trained on 2,000 Fashion-MNIST
# images end at 0.19-0.22 (stated before the first Fashion-MNIST panel; chance is 0.9).
FAIL_ABOVE_BY_DATASET = {"fashion_mnist": 0.5}


def default_fail_above(dataset):
    """The error above which a training counts as failed on `dataset`."""
    return FAIL_ABOVE_BY_DATASET.get(dataset, FAIL_ABOVE)


STUDY_FILE = "study.json"
PROXY_FILE = "proxy_check.csv"
SEED_FILE = "seed_check.csv"
CONFIRM_FILE = "confirm_check.csv"
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
    confirm=CONFIRM,
    fail_above=None,
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
    floor: `seed_check` networks retrained with a second seed,
    `proxy_check` networks retrained for `PROXY_FACTOR` x the epochs with two
    seeds, `confirm` networks of each space of the headline pair
    (`headline_pair`) retrained for `PROXY_FACTOR` x the epochs (0: off),
    and the share of trainings per space whose error is above `fail_above`
    (None: `default_fail_above` of the dataset). A ``dataset=`` setting other
    than the config's trains on all of its training split unless
    ``train_examples=`` is given too. The data is loaded before
    the folder is claimed: missing dataset files stop the study with the
    loader's message and nothing written.
    """
    base = STUDY_CONFIG if config is None else config
    if settings.get("dataset", base.dataset) != base.dataset and "train_examples" not in settings:
        settings = dict(settings, train_examples=None)  # the base's subset size is its own dataset's
    config = search.configure(base, settings)
    if config.tuner != "random":
        raise ValueError(f"a study samples each space at random: tuner must be 'random', got {config.tuner!r}")
    check_int("samples (--samples)", samples, 2)
    for name, value, what in (
        ("proxy_check (--proxy-check)", proxy_check, "models for a rank correlation"),
        ("seed_check (--seed-check)", seed_check, "models for a rank correlation"),
        ("confirm (--confirm)", confirm, "networks per space for a KS test"),
    ):
        check_int(name, value, 0)
        if 0 < value < 3:
            raise ValueError(f"{name} needs K >= 3 {what} (or 0: off), got {value}")
    if fail_above is None:
        fail_above = default_fail_above(config.dataset)
    fail_above = check_number("fail_above (--fail-above)", fail_above, 0, 1, min_open=True)
    config = dataclasses.replace(config, max_trials=samples, save_best=False)
    spaces = [with_window(s, flops) for s in check_spaces(spaces)]
    out = os.fspath(config.out)
    ds = config.load_data()
    run_folder.claim(
        out,
        {
            "spaces": [s.describe() for s in spaces],
            "epochs": config.epochs,
            "dataset": config.dataset,
            "image_size": config.image_size,
            "validation_fraction": config.validation_fraction,
            "train_examples": config.train_examples,
            "score_split": config.score_split,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "seed": config.seed,
        },
        file=STUDY_FILE,
        what="a study (only --samples, --proxy-check, --seed-check, --confirm and --fail-above may change)",
    )
    from keras_regnet import trial_workers, tuning

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
    seed, proxy, confirmed = run_checks(
        out, trials, networks, seed_check, proxy_check, setup=setup, config=config, confirm=confirm
    )
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
        "confirm": confirm,
        "fail_above": fail_above,
        "wall_seconds_this_run": round(time.perf_counter() - start, 1),
    }
    summary = report.write_report(out, trials, settings, proxy=proxy, seed_check=seed, confirm=confirmed)
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


def headline_pair(names):
    """The comparison `--confirm` retests: `HEADLINE` when both are studied, else the last paper pair studied."""
    pairs = [(a, b) for a, b, *_ in report.PAPER_PAIRS if a in names and b in names]
    if HEADLINE in pairs:
        return HEADLINE
    return pairs[-1] if pairs else None


def pick_confirm(rows, proxy_rows, pair, k, seed):
    """k networks per space of `pair`: the proxy check's first (their long trainings are reused), then at random.

    Both parts are random draws that do not look at errors, so the union is a
    random sample of the space.
    """
    chosen = []
    for i, space in enumerate(pair):
        own = [r for r in proxy_rows if r["space"] == space][:k]
        taken = {str(r["trial_id"]) for r in own}
        rest = [r for r in rows if r["space"] == space and str(r["trial_id"]) not in taken]
        chosen += own + pick_networks(rest, k - len(own), seed + i)
    return chosen


def _key(row):
    return (row["space"], str(row["trial_id"]))


def _load_long(paths, long_epochs):
    """{replicate: {key: {"error", "seconds"}}}: the long trainings done, from the proxy and confirm tables.

    A training is done once its ``seconds`` cell is filled (a failed one has
    no error but is not retried, as everywhere in the study); an older
    proxy table without the second-seed columns has only replicate 0.
    """
    done = {0: {}, 1: {}}
    for path in paths:
        for key, r in _read_rows(path, lambda r: int(r["epochs"]) == long_epochs).items():
            if r.get("seconds") not in (None, ""):
                done[0][key] = {"error": _number(r["long_error"]), "seconds": float(r["seconds"])}
            if r.get("seconds_seed2") not in (None, ""):
                done[1][key] = {"error": _number(r["long_error_seed2"]), "seconds": float(r["seconds_seed2"])}
    return done


def run_checks(out, trials, networks, seed_check, proxy_check, *, setup, config, confirm=0):
    """Retrain sampled networks in the worker pool: (seed check, proxy check, confirm), each None when off.

    Seed check: `seed_check` networks retrained with a second seed (same
    recipe): how much of an error is the network, how much the draw. Proxy
    check: `proxy_check` networks retrained for `PROXY_FACTOR` x the epochs,
    from the trial's own seed and from a second one: does short training
    rank networks as longer training does, and does longer training rank
    them at all. Confirm: `confirm` networks of each space of `headline_pair`
    retrained for `PROXY_FACTOR` x the epochs from the trial's own seed (the
    proxy check's trainings of the same networks reused), returned raw for
    `report.write_report`. Everything resumes training by training from
    OUT/seed_check.csv, OUT/proxy_check.csv and OUT/confirm_check.csv.
    """
    from keras_regnet import trial_workers

    rows = [row for name in trials for row in trials[name]]
    long_epochs = PROXY_FACTOR * config.epochs
    seed_path, proxy_path = os.path.join(out, SEED_FILE), os.path.join(out, PROXY_FILE)
    confirm_path = os.path.join(out, CONFIRM_FILE)
    pair = headline_pair(list(trials)) if confirm else None
    seed_rows = pick_networks(rows, seed_check, config.seed) if seed_check else []
    proxy_rows = pick_networks(rows, proxy_check, config.seed + 1) if proxy_check else []
    confirm_rows = pick_confirm(rows, proxy_rows, pair, confirm, config.seed + 2) if pair else []
    seed_done = _read_rows(seed_path, lambda r: int(r["epochs"]) == config.epochs)
    long_done = _load_long((proxy_path, confirm_path), long_epochs)
    tasks, queued = [], set()

    def add(kind, row, replicate, epochs):
        key = _key(row)
        network = networks[key]
        task = {
            "kind": kind,
            "row": row,
            "replicate": replicate,
            "trial_id": row["trial_id"],
            "values": network["values"],
            "space": network["space"],
            "epochs": epochs,
            "seed": trial_workers.trial_seed(config.seed, row["trial_id"], replicate),
        }
        if epochs != config.epochs:
            task["train_config"] = {"epochs": epochs}
        tasks.append(task)
        queued.add((kind == "seed", replicate, key))

    # The long ones first (the pool ends evenly); a network in both the proxy check and confirm trains once.
    for kind, chosen, replicate in (("proxy", proxy_rows, 0), ("confirm", confirm_rows, 0), ("proxy2", proxy_rows, 1)):
        for row in chosen:
            if _key(row) not in long_done[replicate] and (False, replicate, _key(row)) not in queued:
                add(kind, row, replicate, long_epochs)
    for row in seed_rows:
        if _key(row) not in seed_done:
            add("seed", row, 1, config.epochs)
    seed_fields = ["space", "trial_id", "flops", "error", "error_seed2", "seed2", "epochs", "seconds"]
    proxy_fields = ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"]
    proxy_fields += ["long_error_seed2", "seed2", "seconds_seed2"]
    confirm_fields = ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"]

    def long_row(row, with_seed2):
        first, second = long_done[0].get(_key(row)), long_done[1].get(_key(row))
        result = {"space": row["space"], "trial_id": str(row["trial_id"]), "flops": int(row["flops"])}
        result.update(short_error=row["val_error"], epochs=long_epochs)
        result.update(long_error=first and first["error"], seconds=first and first["seconds"])
        if with_seed2:
            seed2 = trial_workers.trial_seed(config.seed, row["trial_id"], 1)
            result.update(long_error_seed2=second and second["error"], seconds_seed2=second and second["seconds"])
            result["seed2"] = seed2 if second else None
        return result

    def write_long_tables():
        if proxy_rows:
            proxy_table = [long_row(r, True) for r in proxy_rows if any(_key(r) in long_done[i] for i in (0, 1))]
            run_folder.write_csv(proxy_path, proxy_fields, proxy_table)
        if confirm_rows:
            confirm_table = [long_row(r, False) for r in confirm_rows if _key(r) in long_done[0]]
            run_folder.write_csv(confirm_path, confirm_fields, confirm_table)

    names = {"proxy": "proxy check", "confirm": "confirm", "proxy2": "proxy check, second seed", "seed": "seed check"}
    totals = {kind: sum(1 for t in tasks if t["kind"] == kind) for kind in names}
    counts = dict.fromkeys(names, 0)

    def on_result(task, result):
        row, kind = task["row"], task["kind"]
        error = _final_error(result)
        key = _key(row)
        seconds = round(float(result.get("seconds") or 0.0), 1)
        if kind == "seed":
            common = {"space": key[0], "trial_id": key[1], "flops": int(row["flops"])}
            seed_done[key] = dict(
                common, error=row["val_error"], error_seed2=error, seed2=task["seed"], epochs=task["epochs"]
            )
            seed_done[key]["seconds"] = seconds
            _write_check(seed_path, seed_fields, seed_rows, seed_done)
            text = f"error {row['val_error']:.4f}, second seed {_text(error)}"
        else:
            long_done[task["replicate"]][key] = {"error": error, "seconds": seconds}
            write_long_tables()
            text = f"error {row['val_error']:.4f} after {config.epochs}, {_text(error)} after {task['epochs']} epochs"
        counts[kind] += 1
        print(
            f"{names[kind]} {counts[kind]}/{totals[kind]} {key[0]} trial {key[1]}: {text} ({seconds:.0f} s)", flush=True
        )

    if tasks:
        print(
            f"checks: {totals['seed']} trainings with a second seed at {config.epochs} epochs, "
            f"{totals['proxy'] + totals['proxy2'] + totals['confirm']} at {long_epochs} epochs "
            f"(proxy check {totals['proxy']} + {totals['proxy2']} second seeds, confirm {totals['confirm']}) to go",
            flush=True,
        )
        trial_workers.run_tasks(tasks, setup, workers=config.worker_count(), on_result=on_result)
    seed = None
    if seed_rows:
        pairs = [seed_done[_key(r)] for r in seed_rows]
        seed = report.seed_check_summary(
            [
                dict(p, error=float(p["error"]), error_seed2=float(p["error_seed2"]))
                for p in pairs
                if _number(p["error_seed2"]) is not None
            ]
        )
    proxy = None
    if proxy_rows:
        table = [long_row(r, True) for r in proxy_rows]
        proxy = report.proxy_summary([p for p in table if p["long_error"] is not None], config.epochs, long_epochs)
    confirmed = None
    if confirm_rows:
        confirmed = {
            "a": pair[0],
            "b": pair[1],
            "k": confirm,
            "short_epochs": config.epochs,
            "epochs": long_epochs,
            "rows": [long_row(r, False) for r in confirm_rows],
        }
    return seed, proxy, confirmed


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
