"""The search job: a design space, a KerasTuner search over it, trials in worker processes, trials.csv.

`run_search(space, SearchConfig(...))` is the whole job behind
``keras-regnet search``:

    data.load -> claim OUT (search.json) -> KerasTuner tuner in OUT/tuner
    -> trial_workers.run_searches (or serve the oracle as a distributed chief)
    -> OUT/trials.csv (after every trial) -> OUT/best_model.keras

The KerasTuner parts (constrained oracles, hypermodel) are in
`keras_regnet.tuning`, the process pool in `keras_regnet.trial_workers`;
both are imported on first use, so a bad `SearchConfig` is refused before
TensorFlow loads.
Re-running with the same ``out`` resumes: completed trials are kept and never
run again. The study (`keras_regnet.study`) runs one search per space with
the same `SearchConfig`.
"""

import dataclasses
import json
import math
import os

import numpy as np

from keras_regnet import design_spaces, run_folder, trial_workers
from keras_regnet.validation import check_bool, check_choice, check_int, check_number

TUNERS = ("random", "hyperband", "bayesian")
DISTRIBUTED_ROLES = ("chief", "worker")
SCORE_SPLITS = ("validation", "validation+test")
SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.csv"


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Everything a search (or each space of a study) runs with; every field is checked on creation.

    Attributes:
        tuner: ``"random"`` (sampling the space's distribution), ``"hyperband"``
            or ``"bayesian"``.
        max_trials: networks to try, >= 1.
        epochs: epochs per trial (Hyperband: the maximum), >= 1.
        dataset, data_dir, image_size, validation_fraction, train_examples: the
            data (see `keras_regnet.data.load`); `train_examples` (None: all)
            trains on a fixed stratified subset of that many images and moves
            the rest of the train split into validation.
        score_split: what a trial's error is measured on: ``"validation"``, or
            ``"validation+test"`` (every image it does not train on: a study
            needs no test set, and more scored images make errors less noisy).
        batch_size: >= 1.
        lr: peak learning rate; None keeps the training recipe's.
        seed: seeds the sampler, the data split and each trial's weights.
        out: the search's folder (resumed when it already holds this search).
        workers: trials trained at once, each in its own process; None means
            one per CPU core.
        save_best: write ``best_model.keras`` at the end.
        distributed: None, or KerasTuner's ``"chief"`` / ``"worker"`` role;
            `oracle_host`/`oracle_port` is where the chief serves its oracle,
            `worker_id` names a worker (default: its process id).
    """

    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 3
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    validation_fraction: float = 0.1
    train_examples: int | None = None
    score_split: str = "validation"
    batch_size: int = 128
    lr: float | None = None
    seed: int = 0
    out: str = "runs/search"
    workers: int | None = None
    save_best: bool = True
    distributed: str | None = None
    oracle_host: str = "127.0.0.1"
    oracle_port: int = 8000
    worker_id: str | None = None

    def __post_init__(self):
        check_choice("SearchConfig.tuner", self.tuner, TUNERS)
        check_int("SearchConfig.max_trials", self.max_trials, 1)
        check_int("SearchConfig.epochs", self.epochs, 1)
        check_int("SearchConfig.batch_size", self.batch_size, 1)
        if self.image_size is not None:
            check_int("SearchConfig.image_size", self.image_size, 8)
        if self.train_examples is not None:
            check_int("SearchConfig.train_examples (--train-examples)", self.train_examples, 10)
        check_number("SearchConfig.validation_fraction", self.validation_fraction, 0, 0.5, min_open=True, max_open=True)
        check_choice("SearchConfig.score_split", self.score_split, SCORE_SPLITS)
        if self.lr is not None:
            check_number("SearchConfig.lr", self.lr, 0, min_open=True)
        check_int("SearchConfig.seed", self.seed, 0)
        if self.workers is not None:
            trial_workers.check_workers(self.workers)
        check_bool("SearchConfig.save_best", self.save_best)
        if self.distributed is not None:
            check_choice("SearchConfig.distributed", self.distributed, DISTRIBUTED_ROLES)
        check_int("SearchConfig.oracle_port", self.oracle_port, 1, 65535)
        for name in ("dataset", "out", "oracle_host"):
            if not isinstance(getattr(self, name), (str, os.PathLike)) or not str(getattr(self, name)):
                raise ValueError(f"SearchConfig.{name} must be a non-empty string, got {getattr(self, name)!r}")

    def worker_count(self):
        """`workers`, or one per CPU core."""
        return self.workers or trial_workers.default_workers()

    def train_config(self):
        """The training recipe of every trial: this config's epochs, batch, lr and seed, silent."""
        from keras_regnet import training

        lr = {} if self.lr is None else {"lr": self.lr}
        return training.TrainConfig(epochs=self.epochs, batch_size=self.batch_size, seed=self.seed, verbose=0, **lr)

    def load_data(self):
        from keras_regnet import data as data_lib

        return data_lib.load(
            self.dataset,
            image_size=self.image_size,
            batch_size=self.batch_size,
            data_dir=self.data_dir,
            validation_fraction=self.validation_fraction,
            seed=self.seed,
            train_examples=self.train_examples,
        )


def configure(config, settings):
    """`config` (default `SearchConfig()`) with keyword `settings` replacing its fields."""
    config = SearchConfig() if config is None else config
    if not isinstance(config, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {type(config).__name__}")
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(SearchConfig)})
    if unknown:
        raise TypeError(
            f"unknown search settings {', '.join(unknown)}; SearchConfig has "
            f"{', '.join(f.name for f in dataclasses.fields(SearchConfig))}"
        )
    return dataclasses.replace(config, **settings)


def run_search(space, config=None, **settings):
    """The search job: data, space, oracle, tuner; writes trials.csv and the best model.

    `space` is a design space (or its name). `config` is a `SearchConfig`;
    keyword `settings` replace its fields, e.g.
    ``run_search("AnyNetX_E", max_trials=20, workers=2)``. Trials run in
    worker processes (see `keras_regnet.trial_workers`). Returns the trial
    records (rows of trials.csv; [] for a distributed worker).
    """
    config = configure(config, settings)
    if isinstance(space, str):
        space = design_spaces.get(space)
    if not isinstance(space, design_spaces.DesignSpace):
        raise TypeError(f"space must be a design space or its name, got {type(space).__name__}")
    from keras_regnet import tuning  # (KerasTuner loads TensorFlow: after the checks)

    tuning.set_distributed(
        config.distributed, oracle_host=config.oracle_host, oracle_port=config.oracle_port, worker_id=config.worker_id
    )
    ds = config.load_data()
    warn_if_too_short(config, ds)
    prepared = prepare_search(space, ds, config)
    if config.distributed == "chief":  # KerasTuner's chief serves the oracle; the workers train
        serve(prepared)
    else:
        trial_workers.run_searches([prepared.pool], worker_setup(config), workers=config.worker_count())
    if config.distributed == "worker":
        return []
    return finish_search(prepared)


MIN_STEPS = 100  # fewer training steps per trial than this: warned (the study's default trains 145)


def warn_if_too_short(config, ds):
    """One warning line when every trial trains too few steps to learn (all errors near chance, no hint why)."""
    import sys

    steps = config.epochs * ds.steps_per_epoch
    if steps < MIN_STEPS:
        print(
            f"warning: each trial trains only {steps} steps ({config.epochs} epoch(s) of {ds.steps_per_epoch} "
            f"batches of {config.batch_size}), part of them the recipe's learning-rate warm-up: trials may all end "
            f"near chance error. Use more --epochs or a smaller --batch-size (the study: 5 epochs at batch 32).",
            file=sys.stderr,
            flush=True,
        )
    return steps


@dataclasses.dataclass
class PreparedSearch:
    """A KerasTuner tuner (oracle, hypermodel, project folder), its pool description and its config."""

    tuner: object
    pool: object
    config: SearchConfig


def prepare_search(space, ds, config, *, name=""):
    """Check the space against the data, then set up (or reload) the KerasTuner search in `config.out`.

    `name` labels the search's progress lines (a study's space name).
    """
    import keras_tuner

    from keras_regnet import tuning

    space = design_spaces.get(**{**space.to_dict(), "input_shape": tuple(ds.input_shape), "classes": ds.num_classes})
    minimum = 2 ** (1 + space.num_stages)
    if min(ds.input_shape[:2]) < minimum:
        raise ValueError(
            f"image size {ds.input_shape[0]} is below {minimum}, the minimum for "
            f"{space.num_stages} stride-2 stages and the stem"
        )
    space.sample(np.random.default_rng(config.seed))  # fails fast (before any training) on an unmeetable window

    out = os.fspath(config.out)
    run_folder.claim(
        out,
        {
            "space": space.name,
            "space_config": space.to_dict(),
            "tuner": config.tuner,
            "dataset": config.dataset,
            "train_examples": config.train_examples,  # absent in older folders: read as None (all)
        },
        file=SEARCH_FILE,
        what="a different search",
    )
    train_config = config.train_config()
    hypermodel = tuning.DesignSpaceHyperModel(
        space,
        input_shape=ds.input_shape,
        classes=ds.num_classes,
        train_config=train_config,
        steps_per_epoch=ds.steps_per_epoch,
    )
    oracle = tuning.make_oracle(
        config.tuner, space, max_trials=config.max_trials, seed=config.seed, epochs=config.epochs
    )
    # KerasTuner's Tuner keeps the project folder (reload = resume), serves the
    # oracle as a distributed chief, or wraps it in a client on a worker; the
    # trials themselves run in `trial_workers`.
    tuner = keras_tuner.Tuner(
        oracle=oracle, hypermodel=hypermodel, directory=out, project_name="tuner", overwrite=False, max_model_size=None
    )
    tuner.oracle.verbose = 0
    local = isinstance(tuner.oracle, keras_tuner.Oracle)  # not a distributed worker's client
    if local:
        retry_orphaned_trials(tuner.oracle)
        tuner.save()  # KerasTuner reloads (resumes) a project only once its tuner file exists

    def on_trial_end(trial):
        if local:
            # The oracle saved its state before it let go of the trial; save again, or a
            # resumed search would rerun the trial that ended last.
            tuner.save()
            write_trials_csv(tuner.oracle, os.path.join(out, TRIALS_FILE))

    pool = trial_workers.Search(
        name=name,
        oracle=tuner.oracle,
        space=json.loads(json.dumps(space.to_dict())),
        project_dir=tuner.project_dir,
        epochs=config.epochs,
        max_trials=config.max_trials,
        save_best=config.save_best,
        hyperband=config.tuner == "hyperband",
        on_trial_end=on_trial_end,
        tuner_id=os.environ.get("KERASTUNER_TUNER_ID", "tuner0"),
    )
    return PreparedSearch(tuner, pool, config)


def retry_orphaned_trials(oracle):
    """Send back for a rerun the trials that a kill left RUNNING without the oracle knowing them.

    KerasTuner writes a new trial's ``trial.json`` before ``oracle.json``: a
    kill between the two leaves a trial that a reloaded oracle neither runs
    nor retries, so the search would end with it RUNNING for ever. Each such
    trial ends as INVALID, which KerasTuner retries. Returns their ids.
    """
    state = oracle.get_state()
    known = set(state.get("retry_queue", [])) | set(state.get("ongoing_trials", {}).values())
    orphans = [t for t in oracle.trials.values() if t.status == "RUNNING" and t.trial_id not in known]
    for trial in orphans:
        trial.status = "INVALID"
        trial.message = "the search was killed as this trial started"
        oracle.end_trial(trial)
    return [t.trial_id for t in orphans]


def worker_setup(config):
    """The pool's per-process setup: the data, the recipe, and 1/workers of the CPU threads each."""
    threads = max(1, trial_workers.default_workers() // config.worker_count())
    return trial_workers.WorkerSetup(
        dataset=config.dataset,
        data_dir=config.data_dir,
        image_size=config.image_size,
        batch_size=config.batch_size,
        seed=config.seed,
        train_config=config.train_config().to_dict(),
        validation_fraction=config.validation_fraction,
        train_examples=config.train_examples,
        score_split=config.score_split,
        threads=threads,
    )


def serve(prepared):
    """KerasTuner's chief: serve the oracle over gRPC until the workers have run every trial."""
    prepared.tuner.search(epochs=prepared.config.epochs)


def finish_search(prepared):
    """trials.csv, and the best model (`best_model.keras`, `best_trial.json`) when the config asks."""
    from keras_regnet import tuning

    tuner, out = prepared.tuner, os.fspath(prepared.config.out)
    records = write_trials_csv(tuner.oracle, os.path.join(out, TRIALS_FILE))
    if prepared.config.save_best:
        best = tuner.oracle.get_best_trials(1)
        if best and best[0].status == "COMPLETED":
            checkpoint = os.path.join(tuner.get_trial_dir(best[0].trial_id), trial_workers.CHECKPOINT)
            if os.path.exists(checkpoint):
                from keras_regnet.training import save_model_atomically

                save_model_atomically(tuner.load_model(best[0]), os.path.join(out, "best_model.keras"))
                run_folder.write_json(
                    os.path.join(out, "best_trial.json"),
                    json.loads(json.dumps(tuning.trial_record(best[0]), default=_json_default)),
                )
    return records


def write_trials_csv(oracle, path):
    """Rewrite trials.csv from the oracle's trials (atomic replace); returns the rows."""
    from keras_regnet import tuning

    records = [tuning.trial_record(t) for _, t in sorted(oracle.trials.items())]
    columns = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    run_folder.write_csv(path, columns, records)
    return records


def val_error(record):
    """Final-epoch validation error of a trials.csv row or record; None if it did not complete."""
    value = record.get("val_error")
    if value in (None, ""):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serializable: {value!r}")
