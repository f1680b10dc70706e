"""KerasTuner search over a design space: hypermodel, constrained oracles, the search job.

KerasTuner's hyperparameters cannot express AnyNet constraints such as
w_{i+1} >= w_i (dependent bounds are frozen when first defined; keras-tuner
#749, #907). So new trials come from the design space's own sampler instead:
`DesignSpaceOracleMixin` overrides the oracle's random draw with
`space.sample_with_params`, seeded from the oracle's saved seed state (a
resumed search draws the same sequence), and projects model-based proposals
(Bayesian optimization) onto the space with `space.project`. The same mixin
serves `RandomSearch`, `Hyperband` and `BayesianOptimization`.

A trial's hyperparameters are the actual stage values used (``depth_1``,
``width_1``, ``bottleneck_ratio_1``, ``group_width_1``, ...; for RegNet also
``depth``, ``w_0``, ``w_a``, ``w_m``), plain JSON-safe numbers, plus the
trial's ``flops``, ``params`` and ``acts``. Out-of-budget networks are never
trained: the space's complexity window rejects them when sampling, and the
hypermodel refuses any that slips through.
"""

import json
import os

import keras_tuner
import numpy as np

from keras_regnet import design_spaces
from keras_regnet import records as records_lib
from keras_regnet.specs import AnyNetSpec, StageSpec

def _atomic_save_json(path, obj):
    """KerasTuner's `utils.save_json`, written to a temporary file and renamed.

    KerasTuner rewrites `oracle.json` and each `trial.json` in place; a kill
    in the middle left a file that no rerun could reload. Local paths only
    (remote ones, e.g. gs://, keep KerasTuner's own writer).
    """
    if "://" in str(path):
        return _keras_tuner_save_json(path, obj)
    text = json.dumps(obj)
    records_lib.write_text(str(path), text)
    return text


# A private KerasTuner function, patched once; verified with keras-tuner 1.4.8 (pinned in setup.cfg).
_keras_tuner_save_json = keras_tuner.src.utils.save_json
keras_tuner.src.utils.save_json = _atomic_save_json

COMPLEXITY_KEYS = ("flops", "params", "acts")
TUNERS = ("random", "hyperband", "bayesian")
CHECKPOINT = "checkpoint.weights.h5"  # KerasTuner's name for a trial's best weights (Keras 3)
OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")


def register_search_space(space, hp=None):
    """KerasTuner hyperparameters for the space's free parameters (for Bayesian's model).

    Group widths are registered as log-scaled ints, not choices: the
    compatibility step may clamp a stage's group width below the set. Steps
    are left to `space.project`, which rounds every proposal onto the space.
    """
    hp = hp or keras_tuner.HyperParameters()
    for name, domain in space.search_space().items():
        if domain["type"] == "choice" and name.startswith("group_width"):
            values = domain["values"]
            hp.Int(name, min(values), max(values), sampling="log")
        elif domain["type"] == "choice":
            hp.Choice(name, [float(v) for v in domain["values"]])
        elif domain["type"] == "int" and domain.get("sampling") == "log":
            hp.Int(name, domain["min"], domain["max"], sampling="log")  # KerasTuner: log steps multiply
        elif domain["type"] == "int":
            hp.Int(name, domain["min"], domain["max"], step=domain.get("step", 1))
        else:
            hp.Float(name, domain["min"], domain["max"], sampling=domain.get("sampling", "linear"))
    return hp


def trial_values(space, spec, params=None):
    """What a trial records: actual stage values, drawn parameters, complexity."""
    values = space.hyperparameters(spec, params)
    values = {k: (float(v) if isinstance(v, float) else v) for k, v in values.items()}
    values.update({k: int(v) for k, v in space.complexity(spec).to_dict().items()})
    values["block"] = spec.block
    values["stem_width"] = spec.stem_width
    return values


def spec_from_values(values):
    """Rebuild the AnyNetSpec a trial recorded (its actual stage values)."""
    stages = []
    i = 1
    while f"depth_{i}" in values:
        stages.append(StageSpec(int(values[f"depth_{i}"]), int(values[f"width_{i}"]),
                                int(values[f"group_width_{i}"]), float(values[f"bottleneck_ratio_{i}"])))
        i += 1
    if not stages:
        raise ValueError(f"trial values hold no stage values (depth_1, width_1, ...): {sorted(values)}")
    return AnyNetSpec(stem_width=int(values.get("stem_width", 32)), stages=tuple(stages),
                      block=values.get("block", "x"))


class DesignSpaceOracleMixin:
    """Makes a KerasTuner oracle draw its trials from a design space.

    Mix in before a KerasTuner oracle class; pass ``space=`` (a
    `keras_regnet.design_spaces` space, with its complexity window).
    """

    def __init__(self, *args, space, **kwargs):
        if not isinstance(space, design_spaces.DesignSpace):
            raise TypeError(f"space must be a keras_regnet design space, got {type(space).__name__}")
        self.space = space
        kwargs.setdefault("hyperparameters", register_search_space(space))
        kwargs.setdefault("tune_new_entries", False)
        kwargs.setdefault("allow_new_entries", True)
        super().__init__(*args, **kwargs)

    def _rng(self):
        rng = np.random.default_rng([int(self.seed), int(self._seed_state)])
        self._seed_state += 1
        return rng

    def _random_values(self):
        for _ in range(self._max_collisions + 1):
            spec, params = self.space.sample_with_params(self._rng())
            values = trial_values(self.space, spec, params)
            if not self._duplicate(values):
                return values
        return None

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        values = response.get("values")
        if values and "flops" not in values:  # a model-based proposal: project it
            tuner_keys = {k: v for k, v in values.items() if k.startswith("tuner/")}
            result = self.space.project_with_params(
                {k: v for k, v in values.items() if not k.startswith("tuner/")})
            if result is None:
                projected = self._random_values()
            else:
                projected = trial_values(self.space, *result)  # the projected b, g, w_0, ... too
                if self._duplicate(projected):
                    projected = self._random_values()
            if projected is None:
                return {"status": "STOPPED", "values": None}
            response = dict(response, values={**projected, **tuner_keys})
        return response


class RandomSearchOracle(DesignSpaceOracleMixin, keras_tuner.oracles.RandomSearchOracle):
    """Random search = sampling the design space's distribution (the paper's setting)."""


class HyperbandOracle(DesignSpaceOracleMixin, keras_tuner.oracles.HyperbandOracle):
    """Hyperband whose new configurations are design-space samples."""


class BayesianOptimizationOracle(DesignSpaceOracleMixin, keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimization whose proposals are projected onto the design space."""


class DesignSpaceHyperModel(keras_tuner.HyperModel):
    """Builds and compiles the AnyNet that a trial's values describe."""

    def __init__(self, space, *, input_shape, classes, train_config, steps_per_epoch, name="anynet"):
        super().__init__(name=name, tunable=False)
        self.space = space
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.train_config = train_config
        self.steps_per_epoch = steps_per_epoch

    def build(self, hp):
        from keras_regnet import training
        from keras_regnet.models import AnyNet

        if "flops" in hp.values:  # a trial: the values describe the network
            spec = spec_from_values(hp.values)
        else:  # KerasTuner's initial build with default values
            spec = self.space.project(dict(hp.values)) or self.space.sample(np.random.default_rng(0))
        if not self.space.contains(spec):
            raise keras_tuner.errors.FailedTrialError(
                f"configuration outside {self.space.name} or its complexity window: {spec.describe()}")
        model = AnyNet(spec, input_shape=self.input_shape, classes=self.classes, name=self.name)
        return training.compile_model(model, self.train_config, self.steps_per_epoch)


def _last(trial, name):
    try:
        value = trial.metrics.get_last_value(name)
    except (KeyError, ValueError):
        return None
    return None if value is None else float(value)


def trial_record(trial):
    """One flat dict for trials.csv: id, status, values, complexity, error, time."""
    values = dict(trial.hyperparameters.values)
    accuracy = _last(trial, "val_accuracy")
    record = {
        "trial_id": trial.trial_id,
        "status": trial.status,
        "val_error": None if accuracy is None else 1.0 - accuracy,
        "best_val_error": None if trial.score is None else 1.0 - float(trial.score),
        "seconds": _last(trial, "seconds"),
        "epochs": values.pop("tuner/epochs", None),
        "worker_peak_rss_mb": _last(trial, "worker_peak_rss_mb"),
        "message": (trial.message or "").strip().splitlines()[0] if trial.message else None,
    }
    for key in [k for k in values if k.startswith("tuner/")]:
        record[key] = values.pop(key)
    record.update(values)
    return record


def format_trial(trial):
    values = trial.hyperparameters.values
    depths = [values.get(f"depth_{i}") for i in range(1, 9) if f"depth_{i}" in values]
    widths = [values.get(f"width_{i}") for i in range(1, 9) if f"width_{i}" in values]
    accuracy = _last(trial, "val_accuracy")
    error = "   n/a" if accuracy is None else f"{1 - accuracy:6.4f}"
    seconds = _last(trial, "seconds")
    flops = values.get("flops")
    flops_text = "?" if flops is None else f"{flops / 1e6:.1f}M"
    return (f"trial {trial.trial_id} {trial.status.lower():9} depths {depths} widths {widths} "
            f"flops {flops_text} val_error {error} time {'?' if seconds is None else f'{seconds:.1f}s'}")


def write_trials_csv(oracle, path):
    """Rewrite trials.csv from the oracle's trials (atomic replace)."""
    records = [trial_record(t) for _, t in sorted(oracle.trials.items())]
    columns = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    records_lib.write_csv(path, columns, records)
    return records


def parse_window(text, name="--flops"):
    """'1M:20M' -> (1e6, 2e7); suffixes k, M, G; an empty side means open."""
    if text is None:
        return None
    units = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}

    def number(part):
        part = part.strip()
        if not part:
            return None
        scale = units.get(part[-1], 1)
        try:
            return float(part[:-1] if part[-1] in units else part) * scale
        except ValueError:
            raise ValueError(f"{name} must look like 1M:20M (suffixes k, M, G), got {text!r}") from None

    if ":" not in text:
        raise ValueError(f"{name} must look like LO:HI, e.g. 1M:20M, got {text!r}")
    lo, hi = (number(p) for p in text.split(":", 1))
    lo = 0.0 if lo is None else lo
    if lo < 0 or (hi is not None and hi <= lo):
        raise ValueError(f"{name} window {text!r} is empty: it needs 0 <= LO < HI")
    return (lo, hi)


def make_oracle(tuner, space, *, max_trials, seed, epochs):
    """The constrained oracle for `tuner`; a trial whose worker died is retried once."""
    common = {"space": space, "objective": OBJECTIVE, "seed": seed, "max_retries_per_trial": 1}
    if tuner == "random":
        return RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        # KerasTuner's default (3 x dimensions random points first) would make
        # a small budget pure random search; keep a quarter of it random.
        return BayesianOptimizationOracle(max_trials=max_trials, num_initial_points=max(2, max_trials // 4),
                                          **common)
    if tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=max(epochs, 2), factor=3, hyperband_iterations=1, **common)
        oracle.max_trials = max_trials  # Hyperband sizes its brackets; this caps the total
        return oracle
    raise ValueError(f"tuner must be one of {TUNERS}, got {tuner!r}")


def set_distributed(role, *, oracle_host, oracle_port, worker_id=None):
    """KerasTuner's chief/worker mode, through its environment variables."""
    if role is None:
        return
    if role not in ("chief", "worker"):
        raise ValueError(f"distributed role must be 'chief' or 'worker', got {role!r}")
    if not isinstance(oracle_port, int) or not 0 < oracle_port < 65536:
        raise ValueError(f"the oracle port must be in 1..65535, got {oracle_port!r}")
    os.environ["KERASTUNER_TUNER_ID"] = "chief" if role == "chief" else f"tuner{worker_id if worker_id is not None else os.getpid()}"
    os.environ["KERASTUNER_ORACLE_IP"] = oracle_host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(oracle_port)


def run_search(*, space, tuner="random", max_trials=10, epochs=3, dataset="digits", data_dir=None,
               image_size=None, batch_size=128, out="runs/search", seed=0, train_config=None,
               distributed=None, oracle_host="127.0.0.1", oracle_port=8000, worker_id=None,
               save_best=True, workers=None, verbose=0):
    """The search job: data, space, oracle, tuner; writes trials.csv and the best model.

    `space` is a design space (or its name, given with no overrides).
    Trials run in `workers` worker processes (default: one per CPU core; see
    `keras_regnet.trial_workers`). Re-running with the same `out` resumes:
    completed trials are kept and never re-run. Returns the trial records.
    """
    from keras_regnet import data as data_lib
    from keras_regnet import trial_workers

    if isinstance(space, str):
        space = design_spaces.get(space)
    if not isinstance(space, design_spaces.DesignSpace):
        raise TypeError(f"space must be a design space or its name, got {type(space).__name__}")
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {', '.join(TUNERS)}, got {tuner!r}")
    for name, value in (("max_trials", max_trials), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    workers = trial_workers.check_workers(trial_workers.default_workers() if workers is None else workers)
    set_distributed(distributed, oracle_host=oracle_host, oracle_port=oracle_port, worker_id=worker_id)
    ds = data_lib.load(dataset, image_size=image_size, batch_size=batch_size, data_dir=data_dir, seed=seed)
    prepared = prepare_search(space, ds, tuner=tuner, max_trials=max_trials, epochs=epochs, out=out, seed=seed,
                              train_config=train_config, dataset=dataset, batch_size=batch_size,
                              save_best=save_best, name="")
    if distributed == "chief":  # KerasTuner's chief serves the oracle; the workers train
        serve(prepared)
    else:
        setup = worker_setup(dataset=dataset, data_dir=data_dir, image_size=image_size, batch_size=batch_size,
                             seed=seed, train_config=prepared.train_config, workers=workers)
        trial_workers.run_searches([prepared.pool], setup, workers=workers)
    if distributed == "worker":
        return []
    return finish_search(prepared, out, save_best=save_best)


class PreparedSearch:
    """A KerasTuner tuner (oracle, hypermodel, project folder) and its pool description."""

    def __init__(self, tuner, pool, train_config):
        self.tuner = tuner
        self.pool = pool
        self.train_config = train_config


def prepare_search(space, ds, *, tuner, max_trials, epochs, out, seed, train_config, dataset, batch_size,
                   save_best, name):
    """Check the space against the data, then set up (or reload) the KerasTuner search in `out`."""
    from keras_regnet import training, trial_workers

    overrides = {**space.to_dict(), "input_shape": tuple(ds.input_shape), "classes": ds.num_classes}
    space = design_spaces.get(**overrides)
    minimum = 2 ** (1 + space.num_stages)
    if min(ds.input_shape[:2]) < minimum:
        raise ValueError(f"image size {ds.input_shape[0]} is below {minimum}, the minimum for "
                         f"{space.num_stages} stride-2 stages and the stem")
    # Fail fast (before any training) when the window cannot be met.
    space.sample(np.random.default_rng(seed))

    config = train_config or training.TrainConfig(epochs=epochs, batch_size=batch_size, verbose=0, seed=seed)
    os.makedirs(out, exist_ok=True)
    _check_out(out, space, tuner, dataset)
    hypermodel = DesignSpaceHyperModel(space, input_shape=ds.input_shape, classes=ds.num_classes,
                                       train_config=config, steps_per_epoch=ds.steps_per_epoch)
    oracle = make_oracle(tuner, space, max_trials=max_trials, seed=seed, epochs=epochs)
    # KerasTuner's Tuner keeps the project folder (reload = resume), serves the
    # oracle as a distributed chief, or wraps it in a client on a worker; the
    # trials themselves run in `trial_workers`.
    search = keras_tuner.Tuner(oracle=oracle, hypermodel=hypermodel, directory=out, project_name="tuner",
                               overwrite=False, max_model_size=None)
    search.oracle.verbose = 0
    local = isinstance(search.oracle, keras_tuner.Oracle)  # not a distributed worker's client
    if local:
        search.save()  # KerasTuner reloads (resumes) a project only once its tuner file exists

    def on_trial_end(trial):
        if local:
            # The oracle saved its state before it let go of the trial; save again, or a
            # resumed search would rerun the trial that ended last.
            search.save()
            write_trials_csv(search.oracle, os.path.join(out, "trials.csv"))

    pool = trial_workers.Search(
        name=name, oracle=search.oracle, space=json.loads(json.dumps(space.to_dict())),
        project_dir=search.project_dir, epochs=epochs, max_trials=max_trials, save_best=save_best,
        hyperband=tuner == "hyperband", on_trial_end=on_trial_end,
        tuner_id=os.environ.get("KERASTUNER_TUNER_ID", "tuner0"))
    return PreparedSearch(search, pool, config)


def worker_setup(*, dataset, data_dir, image_size, batch_size, seed, train_config, workers):
    """The pool's per-process setup: the data, the recipe, and 1/workers of the CPU threads each."""
    from keras_regnet import trial_workers

    threads = max(1, trial_workers.default_workers() // workers)
    return trial_workers.WorkerSetup(dataset=dataset, data_dir=data_dir, image_size=image_size,
                                     batch_size=batch_size, seed=seed, train_config=train_config.to_dict(),
                                     threads=threads)


def serve(prepared):
    """KerasTuner's chief: serve the oracle over gRPC until the workers have run every trial."""
    prepared.tuner.search(epochs=prepared.pool.epochs)


def finish_search(prepared, out, *, save_best):
    """trials.csv, and the best model (`best_model.keras`, `best_trial.json`) when asked."""
    search = prepared.tuner
    records = write_trials_csv(search.oracle, os.path.join(out, "trials.csv"))
    if save_best:
        best = search.oracle.get_best_trials(1)
        if best and best[0].status == "COMPLETED":
            checkpoint = os.path.join(search.get_trial_dir(best[0].trial_id), CHECKPOINT)
            if os.path.exists(checkpoint):
                from keras_regnet.training import save_model_atomically

                save_model_atomically(search.load_model(best[0]), os.path.join(out, "best_model.keras"))
                records_lib.write_json(os.path.join(out, "best_trial.json"),
                                       json.loads(json.dumps(trial_record(best[0]), default=_json_default)))
    return records


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serializable: {value!r}")


def _check_out(out, space, tuner, dataset):
    """An output folder belongs to one search: refuse to mix another one in."""
    path = os.path.join(out, "search.json")
    identity = {"space": space.name, "space_config": json.loads(json.dumps(space.to_dict(), default=str)),
                "tuner": tuner, "dataset": dataset}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous != identity:
            raise ValueError(
                f"--out {out} holds a different search ({previous.get('space')}, {previous.get('tuner')}, "
                f"{previous.get('dataset')}); use another --out folder to start a new one")
    else:
        records_lib.write_json(path, identity)
