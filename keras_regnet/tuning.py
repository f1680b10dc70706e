"""KerasTuner's parts of a search: the constrained oracles, the hypermodel, a trial's record.

KerasTuner's hyperparameters cannot express AnyNet constraints such as
w_{i+1} >= w_i (dependent bounds are frozen when first defined; keras-tuner
#749, #907). So new trials come from the design space's own sampler instead:
`DesignSpaceOracleMixin.populate_space` draws them with
`space.sample_with_params` from a seeded stream whose position is part of the
oracle's saved state (a resumed search draws the same sequence), and projects
model-based proposals (Bayesian optimization) onto the space with
`space.project_with_params`. The same mixin serves `RandomSearch`,
`Hyperband` and `BayesianOptimization`, through KerasTuner's public oracle
methods only (`populate_space`, `get_state`, `set_state`, `trials`).

A trial's hyperparameters are the actual stage values used (``depth_1``,
``width_1``, ``bottleneck_ratio_1``, ``group_width_1``, ...; for RegNet also
``depth``, ``w_0``, ``w_a``, ``w_m``), plain JSON-safe numbers, plus the
trial's ``flops``, ``params`` and ``acts``. Out-of-budget networks are never
trained: the space's complexity window rejects them when sampling, and the
hypermodel refuses any that slips through. The search job that drives all this
is `keras_regnet.search`.
"""

import json
import os

import keras_tuner
import numpy as np

from keras_regnet import design_spaces, run_folder
from keras_regnet.specs import AnyNetSpec, StageSpec
from keras_regnet.validation import check_choice, check_int


def _atomic_save_json(path, obj):
    """KerasTuner's `utils.save_json`, written to a temporary file and renamed.

    KerasTuner rewrites `oracle.json` and each `trial.json` in place; a kill
    in the middle left a file that no rerun could reload. Local paths only
    (remote ones, e.g. gs://, keep KerasTuner's own writer).
    """
    if "://" in str(path):
        return _keras_tuner_save_json(path, obj)
    text = json.dumps(obj)
    run_folder.write_text(str(path), text)
    return text


# The one private KerasTuner name we patch; verified on keras-tuner 1.4.8 (pinned <1.5 in setup.cfg).
_keras_tuner_save_json = keras_tuner.src.utils.save_json
keras_tuner.src.utils.save_json = _atomic_save_json

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
        stages.append(
            StageSpec(
                int(values[f"depth_{i}"]),
                int(values[f"width_{i}"]),
                int(values[f"group_width_{i}"]),
                float(values[f"bottleneck_ratio_{i}"]),
            )
        )
        i += 1
    if not stages:
        raise ValueError(f"trial values hold no stage values (depth_1, width_1, ...): {sorted(values)}")
    return AnyNetSpec(
        stem_width=int(values.get("stem_width", 32)), stages=tuple(stages), block=values.get("block", "x")
    )


MAX_COLLISIONS = 20  # fresh draws tried before a search gives up on finding an untried network


def _network(values):
    """A trial's values without KerasTuner's bookkeeping keys (tuner/epochs, ...)."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


class DesignSpaceOracleMixin:
    """Makes a KerasTuner oracle draw its trials from a design space.

    Mix in before a KerasTuner oracle class; pass ``space=`` (a
    `keras_regnet.design_spaces` space, with its complexity window). Only
    KerasTuner's public oracle surface is used: `populate_space` replaces
    the oracle's own random configurations with `sample_values` and projects
    model-based proposals onto the space; `get_state`/`set_state` carry the
    sampler's position, so a resumed search draws the same sequence.
    """

    def __init__(self, *args, space, **kwargs):
        if not isinstance(space, design_spaces.DesignSpace):
            raise TypeError(f"space must be a keras_regnet design space, got {type(space).__name__}")
        self.space = space
        kwargs.setdefault("hyperparameters", register_search_space(space))
        kwargs.setdefault("tune_new_entries", False)
        kwargs.setdefault("allow_new_entries", True)
        super().__init__(*args, **kwargs)
        self.sample_index = int(self.seed)  # the next draw's position in the seeded stream

    def get_state(self):
        return {**super().get_state(), "sample_index": self.sample_index}

    def set_state(self, state):
        super().set_state(state)
        self.sample_index = int(state.get("sample_index", self.seed))

    def tried(self, values):
        """Whether a trial of this search already has the network that `values` describe."""
        network = _network(values)
        return any(_network(t.hyperparameters.values) == network for t in self.trials.values())

    def sample_values(self):
        """The values of a fresh design-space sample not tried before (None if none is found)."""
        for _ in range(MAX_COLLISIONS + 1):
            rng = np.random.default_rng([int(self.seed), self.sample_index])
            self.sample_index += 1
            values = trial_values(self.space, *self.space.sample_with_params(rng))
            if not self.tried(values):
                return values
        return None

    def projected_values(self, proposal):
        """A model-based proposal rounded onto the space (a fresh sample if it cannot be, or was tried)."""
        result = self.space.project_with_params(_network(proposal))
        values = None if result is None else trial_values(self.space, *result)  # the projected b, g, w_0, ...
        if values is None or self.tried(values):
            values = self.sample_values()
        return values

    @staticmethod
    def _with_values(response, values):
        if values is None:
            return {"status": "STOPPED", "values": None}
        tuner_keys = {k: v for k, v in response["values"].items() if k.startswith("tuner/")}
        return dict(response, values={**values, **tuner_keys})


class RandomSearchOracle(DesignSpaceOracleMixin, keras_tuner.oracles.RandomSearchOracle):
    """Random search = sampling the design space's distribution (the paper's setting)."""

    def populate_space(self, trial_id):
        return self._with_values({"status": "RUNNING", "values": {}}, self.sample_values())


class HyperbandOracle(DesignSpaceOracleMixin, keras_tuner.oracles.HyperbandOracle):
    """Hyperband whose new configurations are design-space samples."""

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        values = response.get("values")
        if not values or "tuner/trial_id" in values:  # waiting, stopped, or a next round of a trained one
            return response
        return self._with_values(response, self.sample_values())


class BayesianOptimizationOracle(DesignSpaceOracleMixin, keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimization: design-space samples first, then proposals projected onto the space."""

    def populate_space(self, trial_id):
        completed = sum(1 for t in self.trials.values() if t.status == "COMPLETED")
        initial = self.num_initial_points
        if initial is None:  # KerasTuner's default
            initial = max(3 * len(self.hyperparameters.space), 3)
        if completed < initial:
            return self._with_values({"status": "RUNNING", "values": {}}, self.sample_values())
        response = super().populate_space(trial_id)
        if not response.get("values"):
            return response
        return self._with_values(response, self.projected_values(response["values"]))


class DesignSpaceHyperModel(keras_tuner.HyperModel):
    """Builds and compiles the AnyNet that a trial's values describe."""

    def __init__(
        self, space, *, input_shape, classes, train_config, steps_per_epoch, zero_init_last=True, name="anynet"
    ):
        super().__init__(name=name, tunable=False)
        self.space = space
        self.zero_init_last = zero_init_last
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
                f"configuration outside {self.space.name} or its complexity window: {spec.describe()}"
            )
        model = AnyNet(
            spec,
            input_shape=self.input_shape,
            classes=self.classes,
            zero_init_last=self.zero_init_last,
            name=self.name,
        )
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
    return (
        f"trial {trial.trial_id} {trial.status.lower():9} depths {depths} widths {widths} "
        f"flops {flops_text} val_error {error} time {'?' if seconds is None else f'{seconds:.1f}s'}"
    )


def make_oracle(tuner, space, *, max_trials, seed, epochs):
    """The constrained oracle for `tuner`; a trial whose worker died is retried once."""
    common = {"space": space, "objective": OBJECTIVE, "seed": seed, "max_retries_per_trial": 1}
    if tuner == "random":
        return RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        # KerasTuner's default (3 x dimensions random points first) would make
        # a small budget pure random search; keep a quarter of it random.
        return BayesianOptimizationOracle(max_trials=max_trials, num_initial_points=max(2, max_trials // 4), **common)
    if tuner == "hyperband":
        oracle = HyperbandOracle(max_epochs=max(epochs, 2), factor=3, hyperband_iterations=1, **common)
        oracle.max_trials = max_trials  # Hyperband sizes its brackets; this caps the total
        return oracle
    raise ValueError(f"unknown tuner {tuner!r}; keras_regnet.search.TUNERS lists the known ones")


def set_distributed(role, *, oracle_host, oracle_port, worker_id=None):
    """KerasTuner's chief/worker mode, through its environment variables."""
    if role is None:
        return
    check_choice("distributed role", role, ("chief", "worker"))
    check_int("the oracle port", oracle_port, 1, 65535)
    worker = f"tuner{worker_id if worker_id is not None else os.getpid()}"
    os.environ["KERASTUNER_TUNER_ID"] = "chief" if role == "chief" else worker
    os.environ["KERASTUNER_ORACLE_IP"] = oracle_host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(oracle_port)
