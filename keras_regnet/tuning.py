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
hypermodel refuses any that slips through. Every trial's hyperparameters hold
these values (the ones the oracle does not tune as `Fixed`), so TensorBoard's
HParams dashboard shows them.

For a KerasTuner user, `RandomSearch`, `Hyperband` and `BayesianOptimization`
are KerasTuner's own tuners over a design space (its oracle, and
`DesignSpaceHyperModel` unless another hypermodel is given), searched
in-process with `tuner.search(x, y, ...)`; `spec_from_hp` serves a user's own
``build(hp)``. The search job behind ``keras-regnet search`` runs the same
oracles and hypermodel in a pool of worker processes (`keras_regnet.search`).
"""

import dataclasses
import inspect
import json
import math
import os
import re
import weakref

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


def as_space(space, **overrides):
    """A design space: `space` itself, or `design_spaces.get(space, **overrides)` for a name."""
    if isinstance(space, design_spaces.DesignSpace):
        if overrides:
            raise TypeError(
                f"design-space keywords {', '.join(sorted(overrides))} go with a space name; "
                f"{space.name} is already a space (use design_spaces.get({space.name!r}, ...))"
            )
        return space
    if isinstance(space, str):
        return design_spaces.get(space, **overrides)
    raise TypeError(f"space must be a keras_regnet design space or its name, got {type(space).__name__}")


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


_DESIGN_KEYS = {"flops", "params", "acts", "block", "stem_width", "depth", "w_0", "w_a", "w_m"}
_DESIGN_KEYS |= {"bottleneck_ratio", "group_width"}
_DESIGN_STAGE_KEY = re.compile(r"(depth|width|bottleneck_ratio|group_width)_\d+")


def _is_design_value(name):
    """Whether `name` is one of a trial's design values (`trial_values`' keys)."""
    return name in _DESIGN_KEYS or _DESIGN_STAGE_KEY.fullmatch(name) is not None


def fix_design_values(hp):
    """Register each of `hp`'s values that its space lacks as a `Fixed` hyperparameter (in place).

    KerasTuner shows only registered hyperparameters (TensorBoard's HParams,
    `results_summary`'s space); a design-space trial's values are more than
    the oracle tunes (the actual widths of a RegNet, flops, params, ...).
    KerasTuner's bookkeeping (``tuner/epochs``, ...) is left as it is.
    """
    registered = {h.name for h in hp.space}
    for name, value in list(hp.values.items()):
        if name not in registered and not name.startswith("tuner/") and isinstance(value, (bool, int, float, str)):
            hp.Fixed(name, value)
    return hp


class DesignSpaceOracleMixin:
    """Makes a KerasTuner oracle draw its trials from a design space.

    Mix in before a KerasTuner oracle class; the first argument (or ``space=``)
    is a `keras_regnet.design_spaces` space with its complexity window, or a
    space's name; the others are the KerasTuner oracle's. Only
    KerasTuner's public oracle surface is used: `populate_space` replaces
    the oracle's own random configurations with `sample_values` and projects
    model-based proposals onto the space; `get_state`/`set_state` carry the
    sampler's position, so a resumed search draws the same sequence;
    `create_trial` adds the trial's design values that the oracle does not
    tune (widths of a RegNet, flops, ...) to the trial's hyperparameters as
    `Fixed`, so that TensorBoard's HParams dashboard shows them.
    """

    def __init__(self, space, *args, **kwargs):
        self.space = as_space(space)
        kwargs.setdefault("hyperparameters", register_search_space(self.space))
        kwargs.setdefault("tune_new_entries", False)
        kwargs.setdefault("allow_new_entries", True)
        super().__init__(*args, **kwargs)
        if kwargs.get("seed") is not None:
            # KerasTuner takes `seed or random.randint(1, 10000)`: seed 0 would draw a random one,
            # and a search with seed 0 (the default) would sample other networks on every run.
            self.seed = int(kwargs["seed"])
        self.sample_index = int(self.seed)  # the next draw's position in the seeded stream

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.status == "RUNNING":
            fix_design_values(trial.hyperparameters)
        return trial

    def update_space(self, hyperparameters):
        """KerasTuner's, blind to the design values that `create_trial` registered (not new entries of a build)."""
        tuned = {h.name for h in self.hyperparameters.space}
        design = {h.name for h in hyperparameters.space if h.name not in tuned and _is_design_value(h.name)}
        if design:
            kept = keras_tuner.HyperParameters()
            kept.merge([h for h in hyperparameters.space if h.name not in design])
            hyperparameters = kept
        return super().update_space(hyperparameters)

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


def spec_from_hp(hp, space):
    """The network (`AnyNetSpec`) of a trial of a design-space oracle, for a user's own ``build(hp)``.

    `hp` is the `keras_tuner.HyperParameters` that ``build`` receives (or its
    values as a dict); `space` the search's design space (or its name). A
    trial's values describe the network; KerasTuner's first call, on an
    empty or default `hp` (to collect the search space), gets a stand-in
    network of the space (the defaults projected onto it, else its first
    seeded sample). A network outside the space or its complexity window
    raises `keras_tuner.errors.FailedTrialError` (the trial fails, the search
    goes on).
    """
    space = as_space(space)
    values = _network(dict(hp.values if isinstance(hp, keras_tuner.HyperParameters) else hp))
    if "flops" in values:  # a trial: the values describe the network
        spec = spec_from_values(values)
    else:  # KerasTuner's initial build, with default values or none
        spec = space.project(values) if all(key in values for key in space.search_space()) else None
        spec = spec or space.sample(np.random.default_rng(0))
    if not space.contains(spec):
        raise keras_tuner.errors.FailedTrialError(
            f"configuration outside {space.name} or its complexity window: {spec.describe()}"
        )
    return spec


def _needs_steps(config):
    """Whether the recipe's learning rate depends on the number of steps per epoch."""
    return not (config.schedule == "constant" and config.warmup_epochs == 0)


def steps_from_fit_arguments(fit, args, kwargs):
    """Steps per epoch of ``fit(*args, **kwargs)``, from its arguments and data, or None if unknown."""
    bound = inspect.signature(fit).bind_partial(*args, **kwargs).arguments
    if bound.get("steps_per_epoch"):
        return int(bound["steps_per_epoch"])
    x = bound.get("x")
    if isinstance(x, (list, tuple, dict)):
        x = next(iter(x.values() if isinstance(x, dict) else x), None)
    shape = getattr(x, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:  # arrays: samples, batched by fit
        samples = int(shape[0])
        split = bound.get("validation_split") or 0.0
        if split and bound.get("validation_data") is None:
            samples = int(math.floor(samples * (1.0 - split)))  # Keras' split
        return max(1, math.ceil(samples / (bound.get("batch_size") or 32)))
    try:  # a tf.data.Dataset of known cardinality, a keras.utils.PyDataset, ...: batches
        length = len(x)
    except TypeError:
        return None
    return int(length) if length and length > 0 else None


class DesignSpaceHyperModel(keras_tuner.HyperModel):
    """Builds and compiles the AnyNet that a trial's values describe.

    ``DesignSpaceHyperModel(space)`` takes the input shape and classes from
    the space (``input_shape=``, ``classes=`` override them) and compiles with
    the package's recipe (`keras_regnet.training.compile_model`:
    `train_config`, default ``TrainConfig()``: SGD with momentum, warm-up and
    cosine decay, weight decay; sparse cross-entropy; accuracy). The schedule
    needs the steps per epoch: `fit` (which KerasTuner's ``search`` calls)
    sizes it to the epochs that it runs and the steps per epoch of its data,
    or ``steps_per_epoch=`` where the data has no length (a generator: else
    the search stops with an error that says so). A schedule without warm-up or decay
    (``TrainConfig(schedule="constant", warmup_epochs=0)``) needs neither.
    `build` alone (as the search job's worker processes call it,
    `keras_regnet.trial_workers`) compiles with `train_config` as given and
    ``steps_per_epoch``.

    Your own compile step: ``compile=fn``, a callable that compiles the model
    it is given, e.g. ``lambda m: m.compile(optimizer="adam", loss=..., metrics=["accuracy"])``;
    or subclass and override `compile_model(model, hp)`.

    A tuner's ``optimizer=``, ``loss=`` and ``metrics=`` (KerasTuner's
    `Tuner` arguments) recompile each built model as KerasTuner does, after
    `build`, and `fit` keeps them: it re-sizes the recipe's schedule only on
    the recipe's own optimizer. A user's optimizer replaces the recipe's SGD
    whole: no warm-up, no cosine decay, no weight decay and the momentum it
    was given (nor does `fit` then need the steps per epoch); the recipe's
    loss and accuracy stay unless ``loss=`` / ``metrics=`` replace them.
    """

    def __init__(
        self,
        space,
        *,
        input_shape=None,
        classes=None,
        train_config=None,
        steps_per_epoch=None,
        zero_init_last=True,
        compile=None,
        name="anynet",
    ):
        from keras_regnet import training

        super().__init__(name=name, tunable=False)
        self.space = as_space(space)
        self.zero_init_last = zero_init_last
        self.input_shape = tuple(self.space.input_shape if input_shape is None else input_shape)
        self.classes = self.space.classes if classes is None else classes
        self.train_config = training.TrainConfig() if train_config is None else train_config
        if not isinstance(self.train_config, training.TrainConfig):
            raise TypeError(f"train_config must be a training.TrainConfig, got {type(train_config).__name__}")
        if steps_per_epoch is not None:
            check_int("steps_per_epoch", steps_per_epoch, 1)
        self.steps_per_epoch = steps_per_epoch
        if compile is not None and not callable(compile):
            raise TypeError(f"compile must be a callable that compiles a model, got {type(compile).__name__}")
        self.compile = compile
        # model -> (optimizer, metrics) that the recipe compiled it with in `build`: `fit` re-sizes the
        # schedule of that optimizer only, not one that a tuner's optimizer= (or anything else) put there.
        self._recipe_compiles = weakref.WeakKeyDictionary()

    def build(self, hp):
        from keras_regnet.models import AnyNet

        model = AnyNet(
            spec_from_hp(hp, self.space),
            input_shape=self.input_shape,
            classes=self.classes,
            zero_init_last=self.zero_init_last,
            name=self.name,
        )
        return self.compile_model(model, hp)

    def compile_model(self, model, hp):
        """Compile `model` (``compile=``, else the recipe); returns the model.

        With the recipe and no ``steps_per_epoch``, the model is compiled at
        the recipe's peak learning rate, constant after one step, here (enough
        to evaluate or to load weights into), and `fit` compiles it again
        with the schedule sized from its data.
        """
        from keras_regnet import training

        if self.compile is not None:
            compiled = self.compile(model)
            return model if compiled is None else compiled
        config, steps = self.train_config, self.steps_per_epoch
        if steps is None:  # the peak rate after one step of warm-up: a schedule, as fit's (the same optimizer
            # variables, so that the weights a trial saved load into this model without a mismatch)
            config, steps = dataclasses.replace(config, schedule="constant", warmup_epochs=1, epochs=2), 1
        training.compile_model(model, config, steps)
        self._recipe_compiles[model] = (model.optimizer, tuple(model.metrics))
        return model

    def fit(self, hp, model, *args, **kwargs):
        """`model.fit(*args, **kwargs)`, the recipe's schedule sized to the epochs it runs and its data's steps.

        Sizes only the recipe's own optimizer (the one `build` compiled): a
        tuner's ``optimizer=`` (KerasTuner recompiles after `build`),
        ``compile=`` or an overridden `compile_model` are left as they are.
        With a tuner's ``loss=`` / ``metrics=`` alone (KerasTuner keeps the
        built optimizer), the sized optimizer replaces it and theirs stay.
        """
        from keras_regnet import training

        recipe = self._recipe_compiles.get(model)
        if recipe is not None and model.optimizer is recipe[0] and _needs_steps(self.train_config):
            steps = self.steps_per_epoch or steps_from_fit_arguments(model.fit, args, kwargs)
            if steps is None:
                raise keras_tuner.errors.FatalValueError(  # every trial would fail: stop the search
                    "DesignSpaceHyperModel: the training recipe's learning-rate schedule (warm-up, "
                    f"{self.train_config.schedule} decay) needs the steps per epoch, and they cannot be counted "
                    "from this training data (no length). Pass steps_per_epoch= to search(), or "
                    "DesignSpaceHyperModel(space, steps_per_epoch=N), or a schedule that needs none: "
                    "train_config=TrainConfig(schedule='constant', warmup_epochs=0), or your own compile=."
                )
            bound = inspect.signature(model.fit).bind_partial(*args, **kwargs).arguments
            epochs = max(1, int(bound.get("epochs", 1)) - int(bound.get("initial_epoch", 0)))
            if (steps, epochs) != (self.steps_per_epoch, self.train_config.epochs):  # not what build compiled
                config = dataclasses.replace(self.train_config, epochs=epochs)
                if tuple(model.metrics) == recipe[1]:  # as build compiled it
                    training.compile_model(model, config, steps)
                else:  # recompiled by a tuner's loss= / metrics=: keep them, as KerasTuner's own recompile does
                    metrics = [m for m in model.metrics if m.name not in ("loss", "compile_metric")]
                    model.compile(optimizer=training.make_optimizer(config, steps), loss=model.loss, metrics=metrics)
                    model.optimizer.build(model.trainable_variables)
        return super().fit(hp, model, *args, **kwargs)


def _check_compile_overrides(optimizer, loss, metrics):
    """A tuner's optimizer=, loss=, metrics=, checked before the search (else every trial fails in compile)."""
    import keras

    if optimizer is not None:
        if isinstance(optimizer, str):
            try:
                keras.optimizers.get(optimizer)
            except ValueError as error:
                raise ValueError(f"optimizer={optimizer!r} is not a Keras optimizer name ({error})") from None
        elif not isinstance(optimizer, keras.optimizers.Optimizer):
            got = f"the class {optimizer.__name__}" if isinstance(optimizer, type) else type(optimizer).__name__
            raise TypeError(f"optimizer must be a name ('sgd') or an optimizer instance (SGD(...)), got {got}")
    if loss is not None and not (isinstance(loss, (str, list, tuple, dict)) or callable(loss)):
        raise TypeError(f"loss must be a name, loss or function (or a list or dict of them), got {type(loss).__name__}")
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
        raise TypeError(f"metrics must be a list, tuple or dict (metrics=['accuracy']), got {type(metrics).__name__}")


class _DesignSpaceTuner:
    """What `RandomSearch`, `Hyperband` and `BayesianOptimization` share: the constructor.

    ``Tuner(space, hypermodel=None, **kwargs)``: `space` is a design space,
    or a name with the space's keywords among `kwargs` (``flops=``,
    ``input_shape=``, ...); the oracle's keywords (``objective``,
    ``max_trials``, ``seed``, ...) go to the design-space oracle, the rest to
    `keras_tuner.Tuner` (``directory``, ``project_name``, ``overwrite``, ...).
    Without a `hypermodel`, `DesignSpaceHyperModel(space, train_config=...,
    steps_per_epoch=..., compile=...)` builds the trials.

    ``optimizer=`` (a name or an optimizer instance, copied for each build so
    that executions share no state), ``loss=`` and ``metrics=`` are
    KerasTuner's: each built model is recompiled with them. A user's
    optimizer wins over the recipe's (no warm-up, cosine decay or weight
    decay then; see `DesignSpaceHyperModel`) and over ``compile=``'s.
    """

    oracle_class = None
    keras_oracle_class = None

    def __init__(self, space, hypermodel=None, *, train_config=None, steps_per_epoch=None, compile=None, **kwargs):
        _check_compile_overrides(kwargs.get("optimizer"), kwargs.get("loss"), kwargs.get("metrics"))
        if isinstance(space, (str, design_spaces.DesignSpace)):
            arguments = (design_spaces.get(space) if isinstance(space, str) else space)._ARGUMENTS
            space = as_space(space, **{k: kwargs.pop(k) for k in list(kwargs) if k in arguments})
        space = as_space(space)
        oracle_arguments = set(inspect.signature(self.keras_oracle_class.__init__).parameters) - {"self"}
        oracle = self.oracle_class(space, **{k: kwargs.pop(k) for k in list(kwargs) if k in oracle_arguments})
        hypermodel_options = {"train_config": train_config, "steps_per_epoch": steps_per_epoch, "compile": compile}
        if hypermodel is None:
            hypermodel = DesignSpaceHyperModel(space, **hypermodel_options)
        elif any(v is not None for v in hypermodel_options.values()):
            given = ", ".join(k for k, v in hypermodel_options.items() if v is not None)
            raise TypeError(f"{given} configure the default hypermodel; with hypermodel= given, set them there")
        self.space = space
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


class RandomSearch(_DesignSpaceTuner, keras_tuner.RandomSearch):
    """KerasTuner's `RandomSearch` over a design space: trials are the space's seeded samples.

    ``RandomSearch(space, objective="val_accuracy", max_trials=20, directory="runs", project_name="e")``;
    see `_DesignSpaceTuner` for the arguments.
    """

    oracle_class = RandomSearchOracle
    keras_oracle_class = keras_tuner.oracles.RandomSearchOracle


class Hyperband(_DesignSpaceTuner, keras_tuner.Hyperband):
    """KerasTuner's `Hyperband` over a design space (``max_epochs=``, ``factor=``, ...)."""

    oracle_class = HyperbandOracle
    keras_oracle_class = keras_tuner.oracles.HyperbandOracle


class BayesianOptimization(_DesignSpaceTuner, keras_tuner.BayesianOptimization):
    """KerasTuner's `BayesianOptimization` over a design space: samples first, then projected proposals."""

    oracle_class = BayesianOptimizationOracle
    keras_oracle_class = keras_tuner.oracles.BayesianOptimizationOracle


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
