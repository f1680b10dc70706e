"""The training recipe: optimizer, schedule, loss, callbacks, distribution, resume.

`train(TrainConfig(...))` is the whole job behind ``keras-regnet train``:

    data.load -> check the output folder -> strategy.scope(): build + compile
    -> fit (progress bar, TensorBoard, CSV log, best checkpoint, per-epoch backup)
    -> evaluate on test -> OUT/model.keras + OUT/summary.json

The defaults train RegNetX32 on the embedded ``digits`` data to >= 95% test
accuracy in well under 5 minutes on 2 CPU cores (see `TrainConfig`).

Recipe (pycls-like): SGD with momentum 0.9, a linear warm-up to the peak
learning rate and a cosine decay to 0 over the rest of the run, weight decay
5e-5, label smoothing off. d2l's plain recipe (`RECIPES`) is
``TrainConfig.from_recipe("d2l")`` (``--recipe d2l``).

Notes on the choices:

- Weight decay is Keras's ``SGD(weight_decay=...)``: *decoupled* decay
  (``w -= lr * wd * w`` after the update, on every variable) rather than
  pycls/PyTorch's L2 gradient term that goes through momentum; the same number
  therefore regularizes roughly ``1 / (1 - momentum)`` = 10x more weakly.
- Keras's `SparseCategoricalCrossentropy` has no ``label_smoothing``. With
  ``label_smoothing > 0`` the loss is `SparseCategoricalCrossentropyWithSmoothing`
  (one-hot, then smoothed categorical cross-entropy), registered for ``.keras``
  saving as ``keras_regnet>SparseCategoricalCrossentropyWithSmoothing``. Loading
  such a model with its training configuration needs the class registered first:
  ``from keras_regnet.training import SparseCategoricalCrossentropyWithSmoothing``
  (or load with ``compile=False``). With 0 (the default) the plain Keras loss is
  used and nothing is needed.
- ``from_logits`` follows the model's final activation: softmax -> False,
  linear (``classifier_activation=None``) -> True; anything else is refused.
- Mixed precision (``"bf16"`` / ``"fp16"``) sets Keras's global dtype policy
  before the model is built; the classifier is kept in float32 (see
  `float32_classifier`). ``"fp16"`` is for GPUs and refused without one:
  TensorFlow has few float16 CPU kernels, so it trains far slower than float32
  there (README, "Training"); ``"bf16"`` is the CPU choice (AVX512-BF16/AMX).
  Keras adds loss scaling for fp16 by itself.
- Resume: at the end of every epoch the weights and optimizer state go to
  ``OUT/backup/epoch-<n>.weights.h5`` (written to a temporary file, then
  renamed), and only then ``OUT/backup/state.json`` (atomic) names that file,
  the epoch and the wall time and steps so far; the previous epoch's file is
  deleted after. A kill at any instant leaves a complete backup: a killed run
  re-run with the same ``out`` resumes after the last finished epoch (losing
  at most that epoch's work), and its ``summary.json`` counts the wall time
  and steps of the whole run. A backup that cannot be read is reported in one
  line and the run starts over. (Keras' `BackupAndRestore` overwrites its
  weights file in place: a kill mid-write left a file that every rerun
  failed to open.)
- Distribution: ``strategy="multiworker"`` is `MultiWorkerMirroredStrategy`
  configured by ``TF_CONFIG``. Only the chief writes into ``out``; every other
  worker writes its (identical) outputs into ``out/<task_type>-<task_id>``, as
  the TensorFlow multi-worker guide recommends, so workers never overwrite each
  other's files even on a shared file system.
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import time

from keras_regnet import distribute, run_folder, startup
from keras_regnet.validation import check_bool, check_choice, check_int, check_number

SCHEDULES = ("cosine", "constant")
MIXED_PRECISION = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}

# Named recipes: TrainConfig values that replace its defaults (`TrainConfig.from_recipe`).
# "default" is TrainConfig's own defaults; "d2l" is the d2l RegNet chapter's run exactly:
# RegNetX32 at 96x96, batch 128, plain SGD (no momentum) at a constant lr 0.05 for 10 epochs,
# no warm-up, augmentation, weight decay or label smoothing.
RECIPES = {
    "default": {},
    "d2l": dict(
        model="RegNetX32",
        image_size=96,
        epochs=10,
        batch_size=128,
        lr=0.05,
        momentum=0.0,
        weight_decay=0.0,
        warmup_epochs=0.0,
        schedule="constant",
        label_smoothing=0.0,
        augment=False,
        test_each_epoch=True,  # d2l plots the test set's accuracy after every epoch
        init="d2l",  # d2l's network: Xavier-uniform kernels (d2l.init_cnn), every batch-norm gamma 1
    ),
}
INITS = ("default", "d2l")


# --------------------------------------------------------------------------- config


def _safe_name(text):
    """A file-name-safe label: spec paths -> file stem, folder paths -> base name."""
    text = os.fspath(text).rstrip("/\\") or "run"
    base = os.path.basename(text)
    if base.endswith(".json"):
        base = base[:-5]
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in base) or "run"


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; every field is checked on creation.

    Attributes:
        model: a zoo name (``"RegNetX32"``, ``"RegNetX002"``, ...) or a spec
            ``.json`` path (`keras_regnet.zoo.resolve`).
        dataset: ``"digits"`` (embedded, offline), ``"fashion_mnist"`` /
            ``"mnist"`` / ``"cifar10"`` (the official files, wherever they
            are), a prepared TFDS name, or an image folder (see
            `keras_regnet.data.load`).
        data_dir: a folder with the dataset's files, a TFDS data directory or
            an image folder; None for digits.
        image_size: input side; None is the dataset's default (digits: 32).
            At least 8, and at least the model's `AnyNetSpec.min_input_size`.
        epochs: training epochs, >= 1. Default 30.
        batch_size: global batch size, >= 1. Default 128.
        lr: peak learning rate (after warm-up), > 0. Default 0.1.
        momentum: SGD momentum in [0, 1). Default 0.9.
        weight_decay: decoupled weight decay (Keras `SGD(weight_decay=)`),
            >= 0. Default 5e-5.
        warmup_epochs: linear warm-up from 0 to `lr`, >= 0 (fractions allowed);
            capped at half of the run. Default 1.
        schedule: ``"cosine"`` (decay to 0 after warm-up) or ``"constant"``.
        label_smoothing: in [0, 1). Default 0.
        augment: random translation (and flips where labels allow) of the train
            split. Default True.
        mixed_precision: ``"off"`` (default), ``"bf16"`` or ``"fp16"``.
        strategy: ``"auto"`` (the default strategy), ``"mirrored"`` (local
            devices) or ``"multiworker"`` (TF_CONFIG).
        seed: >= 0; seeds weights, shuffling and augmentation.
        out: output folder; None means ``runs/<model>-<dataset>`` (``-<recipe>`` added
            for a recipe other than ``"default"``).
        verbose: Keras fit verbosity: 0 silent, 1 progress bar, 2 one line
            per epoch.
        overwrite: retrain a run that `out` holds finished (False: say it is
            complete and return its summary).
        strict_images: an image folder's unreadable files stop the run
            (True) or are skipped with a warning naming them (False, the
            default; ``summary.json`` counts them in ``skipped_images``).
        init: ``"default"`` (pycls's: He-normal convolution kernels, the last
            batch-norm gamma of each residual branch at 0) or ``"d2l"`` (d2l's
            `init_cnn`: Xavier-uniform convolution and dense kernels, every
            gamma 1). With plain SGD (no momentum) d2l's init learns faster
            in the first steps (60 steps of --recipe d2l on Fashion-MNIST: train
            accuracy 0.48 against 0.30).
        test_each_epoch: also score the test split after every epoch
            (``test_accuracy`` / ``test_loss`` columns of ``history.csv``), as
            d2l's plots do; costs one pass over the test split an epoch.
            Default False (the test split is scored once, at the end).
        recipe: the name of the recipe (`RECIPES`) whose values the other
            fields took, recorded in ``summary.json``. Set it with
            `from_recipe`, which fills in those values; the constructor only
            records the name.
    """

    model: str = "RegNetX32"
    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    augment: bool = True
    mixed_precision: str = "off"
    strategy: str = "auto"
    seed: int = 0
    out: str | None = None
    verbose: int = 1
    strict_images: bool = False
    overwrite: bool = False
    test_each_epoch: bool = False
    init: str = "default"
    recipe: str = "default"

    @classmethod
    def from_recipe(cls, recipe="default", **fields):
        """A config with `recipe`'s values (`RECIPES`) where `fields` gives none: explicit fields win."""
        check_choice("TrainConfig.recipe", recipe, tuple(RECIPES))
        return cls(**{**RECIPES[recipe], **fields, "recipe": recipe})

    def __post_init__(self):
        for name in ("model", "dataset"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                setattr(self, name, value)
            if not isinstance(value, str) or not value:
                raise ValueError(f"TrainConfig.{name} must be a non-empty string; received {value!r}.")
        for name in ("data_dir", "out"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
                setattr(self, name, value)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"TrainConfig.{name} must be None or a non-empty path; received {value!r}.")
        if self.image_size is not None:
            check_int("TrainConfig.image_size", self.image_size, 8)
        check_int("TrainConfig.epochs", self.epochs, 1)
        check_int("TrainConfig.batch_size", self.batch_size, 1)
        self.lr = check_number("TrainConfig.lr", self.lr, 0, min_open=True)
        self.momentum = check_number("TrainConfig.momentum", self.momentum, 0, 1, max_open=True)
        self.weight_decay = check_number("TrainConfig.weight_decay", self.weight_decay, 0)
        self.warmup_epochs = check_number("TrainConfig.warmup_epochs", self.warmup_epochs, 0)
        self.label_smoothing = check_number("TrainConfig.label_smoothing", self.label_smoothing, 0, 1, max_open=True)
        check_choice("TrainConfig.schedule", self.schedule, SCHEDULES)
        check_bool("TrainConfig.augment", self.augment)
        check_choice("TrainConfig.mixed_precision", self.mixed_precision, tuple(MIXED_PRECISION))
        check_choice("TrainConfig.strategy", self.strategy, distribute.STRATEGIES)
        check_int("TrainConfig.seed", self.seed, 0)
        check_int("TrainConfig.verbose", self.verbose, 0, 2)
        check_bool("TrainConfig.strict_images", self.strict_images)
        check_bool("TrainConfig.overwrite", self.overwrite)
        check_bool("TrainConfig.test_each_epoch", self.test_each_epoch)
        check_choice("TrainConfig.init", self.init, INITS)
        check_choice("TrainConfig.recipe", self.recipe, tuple(RECIPES))
        if self.out is None:  # another recipe, another default folder: runs of two recipes never collide
            suffix = "" if self.recipe == "default" else f"-{self.recipe}"
            self.out = os.path.join("runs", f"{_safe_name(self.model)}-{_safe_name(self.dataset)}{suffix}")

    def to_dict(self):
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- optimizer, loss


def warmup_steps(config, steps_per_epoch):
    """Warm-up length in steps: `warmup_epochs` of steps, at most half of the run."""
    total = config.epochs * steps_per_epoch
    return min(round(config.warmup_epochs * steps_per_epoch), total // 2)


def make_learning_rate(config, steps_per_epoch):
    """A float (constant, no warm-up) or a `CosineDecay` schedule with linear warm-up.

    ``"constant"`` with warm-up is `CosineDecay` with ``alpha=1`` (no decay).
    """
    import keras

    if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be an integer >= 1; received {steps_per_epoch!r}.")
    total = config.epochs * steps_per_epoch
    warmup = warmup_steps(config, steps_per_epoch)
    if config.schedule == "constant" and warmup == 0:
        return config.lr
    alpha = 1.0 if config.schedule == "constant" else 0.0
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=total, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup), alpha=alpha, warmup_target=config.lr, warmup_steps=warmup
    )


def make_optimizer(config, steps_per_epoch):
    """SGD (momentum) with the config's learning-rate schedule and decoupled weight decay.

    `keras_regnet.optimizers.SGD` is Keras' SGD with a cheaper-to-trace weight decay.
    """
    from keras_regnet.optimizers import SGD

    return SGD(
        learning_rate=make_learning_rate(config, steps_per_epoch),
        momentum=config.momentum,
        weight_decay=config.weight_decay or None,
    )


def _register_loss():
    import keras

    @keras.saving.register_keras_serializable(package="keras_regnet")
    class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
        """Sparse (integer) labels -> one-hot -> categorical cross-entropy with label smoothing."""

        def __init__(
            self,
            from_logits=False,
            label_smoothing=0.0,
            name="sparse_categorical_crossentropy",
            reduction="sum_over_batch_size",
            dtype=None,
        ):
            super().__init__(name=name, reduction=reduction, dtype=dtype)
            self.from_logits = from_logits
            self.label_smoothing = label_smoothing

        def call(self, y_true, y_pred):
            classes = y_pred.shape[-1]
            y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
            one_hot = keras.ops.one_hot(y_true, classes, dtype=y_pred.dtype)
            return keras.losses.categorical_crossentropy(
                one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
            )

        def get_config(self):
            return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    SparseCategoricalCrossentropyWithSmoothing.__qualname__ = "SparseCategoricalCrossentropyWithSmoothing"
    return SparseCategoricalCrossentropyWithSmoothing


def __getattr__(name):
    # The loss class is made (and registered with Keras) on first use, so that
    # importing this module stays free of TensorFlow: `keras-regnet train`
    # rejects a bad model name, size or output folder in well under a second.
    if name == "SparseCategoricalCrossentropyWithSmoothing":
        if name not in globals():
            globals()[name] = _register_loss()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def final_activation(model):
    """The activation of `model`'s final layer by name ("softmax", "linear", ...); None if it has none.

    The one place that judges whether a model outputs logits: training
    (`classifier_from_logits`) and export (`export.outputs_are_logits`) read it.
    """
    import keras

    layer = model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", str(activation))


def classifier_from_logits(model):
    """True if `model` outputs logits, False for softmax probabilities; other final activations are refused."""
    name = final_activation(model)
    if name in ("softmax", "linear"):
        return name == "linear"
    raise ValueError(
        f"the model's final layer {model.layers[-1].name!r} has activation {name!r}; "
        "training needs classifier_activation='softmax' or None (logits)."
    )


def compile_model(model, config, steps_per_epoch):
    """Compile `model` with the recipe: SGD schedule, sparse cross-entropy, accuracy.

    `from_logits` follows the model's final activation; `config.label_smoothing`
    > 0 uses `SparseCategoricalCrossentropyWithSmoothing`. Call inside
    ``strategy.scope()`` when distributing. Returns the model.
    """
    import keras

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    from_logits = classifier_from_logits(model)
    if config.label_smoothing > 0:
        loss = __getattr__("SparseCategoricalCrossentropyWithSmoothing")(
            from_logits=from_logits, label_smoothing=config.label_smoothing
        )
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=loss,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    # Built here, eagerly: built inside the first traced step, the optimizer's
    # variables make TensorFlow trace the whole training step twice.
    model.optimizer.build(model.trainable_variables)
    return model


def float32_classifier(model):
    """`model` with its final layer computing in float32 (a no-op when it already does).

    Under a mixed global policy Keras builds every layer, the classifier too, in
    bfloat16/float16; softmax and the loss should run in float32. The model is
    cloned with the last layer's dtype set to float32 (fresh weights: call this
    before training).
    """
    import keras

    if model.outputs[0].dtype == "float32":
        return model
    last = model.layers[-1]

    def clone(layer):
        config = layer.get_config()
        if layer is last:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


# --------------------------------------------------------------------------- output folder

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"


def claim_out_dir(out, name, spec, config):
    """Refuse an output folder that holds a run of another model or dataset (run.json or summary.json)."""
    run_folder.claim(
        out,
        {"model": name, "spec": spec.to_dict(), "dataset": config.dataset},
        file=RUN_FILE,
        also=(SUMMARY_FILE,),
        what="a run",
        record=False,
    )


_NOT_SETTINGS = ("out", "verbose", "overwrite", "strict_images")  # config fields that do not change the result


def finished_run(out, config):
    """The summary of the finished run `out` holds with `config`'s settings, or None.

    Raises ValueError when `out` holds a finished run with other settings
    (retraining it needs `overwrite`)."""
    path = os.path.join(out, SUMMARY_FILE)
    if config.overwrite or not os.path.isfile(path) or os.path.isdir(os.path.join(out, BACKUP_DIR)):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
        before = summary["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an unreadable summary: the run is redone
    now = config.to_dict()
    changed = [
        f"--{key.replace('_', '-')} {before.get(key)!r} -> {now[key]!r}"
        for key in now
        if key not in _NOT_SETTINGS and before.get(key, now[key]) != now[key]
    ]
    if changed:
        raise ValueError(
            f"--out {out!r} holds a finished run with other settings ({', '.join(changed)}): "
            "pass --overwrite to retrain it there, or choose another --out."
        )
    return summary


def _read_history(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


BACKUP_DIR = "backup"
BACKUP_STATE = "state.json"


def read_backup(backup_dir):
    """The last complete backup: {"epoch", "weights" (path), "wall_time_s", "steps"}; None if none.

    Raises ValueError (naming the file) when the backup exists but cannot be read.
    """
    path = os.path.join(backup_dir, BACKUP_STATE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        epoch, weights = state["epoch"], os.path.join(backup_dir, state["weights"])
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"bad epoch {epoch!r}")
        if not os.path.isfile(weights):
            raise ValueError(f"{weights} is missing")
        return {
            "epoch": epoch,
            "weights": weights,
            "wall_time_s": float(state.get("wall_time_s", 0.0)),
            "steps": int(state.get("steps", 0)),
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"unreadable backup {path}: {error}") from None


def _backup_callback(backup_dir, *, before, throughput, start):
    """Saves weights + optimizer state after every epoch; the state file is the commit point."""
    import keras

    class EpochBackup(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            name = f"epoch-{epoch + 1}.weights.h5"
            save_model_atomically(self.model, os.path.join(backup_dir, name))
            run_folder.write_json(
                os.path.join(backup_dir, BACKUP_STATE),
                {
                    "epoch": epoch + 1,
                    "weights": name,
                    "wall_time_s": before["wall_time_s"] + time.perf_counter() - start,
                    "steps": before["steps"] + throughput.steps,
                },
            )
            for other in os.listdir(backup_dir):
                if other.endswith(".weights.h5") and other != name:
                    os.remove(os.path.join(backup_dir, other))

    return EpochBackup()


def _trim_history(path, epoch):
    """Keep the rows of epochs < `epoch` (a resumed run appends the rest); [] and no file at 0."""

    def row_epoch(row):
        try:
            return int(row.get("epoch"))
        except (TypeError, ValueError):  # a line cut short by a kill
            return None

    rows = [r for r in _read_history(path) if row_epoch(r) is not None and row_epoch(r) < epoch] if epoch else []
    if not rows:
        if os.path.exists(path):
            os.remove(path)
        return rows
    run_folder.write_csv(path, list(rows[0]), rows)
    return rows


def xavier_kernels(model):
    """d2l's `init_cnn`: every convolution and dense kernel drawn again, Xavier-uniform (Keras' seeded RNG)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            layer.kernel.assign(keras.initializers.GlorotUniform()(layer.kernel.shape, layer.kernel.dtype))


# --------------------------------------------------------------------------- callbacks


def epoch_timer(start=None):
    """A callback that times each epoch: `seconds` in training steps (validation excluded), `steps`
    run, and `elapsed`, the seconds from `start` (a `time.perf_counter()` value) to each epoch's end."""
    import keras

    began = time.perf_counter() if start is None else start

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.elapsed, self.steps = [], [], 0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()
            self._end = None

        def on_train_batch_end(self, batch, logs=None):
            self._end = time.perf_counter()
            self.steps += 1

        def on_epoch_end(self, epoch, logs=None):
            if self._end is not None:
                self.seconds.append(self._end - self._start)
            self.elapsed.append(time.perf_counter() - began)

    return EpochTimer()


def save_model_atomically(model, path):
    """`model.save(path)` (or `save_weights` for a ``.weights.h5`` path) through a temporary file
    in the same folder: a kill leaves the old file or the new one."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    (model.save_weights if path.endswith(".weights.h5") else model.save)(tmp)
    os.replace(tmp, path)


def _best_model_callback(path, initial_best):
    import keras

    class BestModel(keras.callbacks.Callback):
        """Saves the model when val_accuracy beats the best so far (atomically, unlike ModelCheckpoint)."""

        best = -math.inf if initial_best is None else initial_best

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_accuracy")
            if value is not None and value > self.best:
                self.best = value
                save_model_atomically(self.model, path)

    return BestModel()


def _test_each_epoch_callback(test):
    import keras

    class TestEachEpoch(keras.callbacks.Callback):
        """Adds the test split's loss and accuracy to each epoch's logs (before the CSV log reads them)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                loss, accuracy = self.model.evaluate(test, verbose=0)
                logs.update(test_loss=float(loss), test_accuracy=float(accuracy))

    return TestEachEpoch()


def make_callbacks(out, *, initial_best=None, test=None):
    """Best model, TensorBoard and CSV log, all under `out` (the epoch backup comes after them); with a
    `test` split, its score each epoch first."""
    import keras

    return [
        *([] if test is None else [_test_each_epoch_callback(test)]),
        _best_model_callback(os.path.join(out, "best.keras"), initial_best),
        keras.callbacks.TensorBoard(os.path.join(out, "logs")),
        keras.callbacks.CSVLogger(os.path.join(out, HISTORY_FILE), append=True),
    ]


# --------------------------------------------------------------------------- the job


def _check_image_size(side, spec, model_name, what):
    """`what` names the size's origin, e.g. "--image-size 16"."""
    if side < spec.min_input_size:
        raise ValueError(
            f"{what} is below {spec.min_input_size}, the smallest input side "
            f"{model_name} accepts (it downsamples {spec.min_input_size}x); "
            f"use --image-size {spec.min_input_size} or more."
        )


def train(config):
    """Train `config.model` on `config.dataset`; write outputs; return the summary dict.

    Writes into the output folder (the chief's; other workers of a multi-worker
    run write into ``out/<task_type>-<task_id>``): ``run.json`` (at start),
    ``history.csv``, ``logs/`` (TensorBoard), ``best.keras`` (best val_accuracy),
    ``backup/`` (while running), ``model.keras`` (final) and ``summary.json``.
    Re-running with the same folder resumes a killed run at its first
    unfinished epoch.

    Raises:
        ValueError / FileNotFoundError: unknown model or dataset, image size
            below the model's minimum, unreadable data, or an output folder
            that holds a run of another model or dataset.
    """
    start = time.perf_counter()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    from keras_regnet import complexity, zoo

    # Pure-Python checks first: no TensorFlow work for a bad model name or size.
    name, spec = zoo.resolve(config.model)
    if config.image_size is not None:
        _check_image_size(config.image_size, spec, name, f"--image-size {config.image_size}")

    if config.strategy != "multiworker":  # (a worker's folder is known once its strategy is)
        claim_out_dir(config.out, name, spec, config)

    # The strategy before any other TensorFlow work (MultiWorkerMirroredStrategy needs it).
    strategy = distribute.make_strategy(config.strategy)
    task_type, task_id, chief = distribute.task_of(strategy)
    out = config.out if chief else os.path.join(config.out, f"{task_type}-{task_id}")
    claim_out_dir(out, name, spec, config)
    done = finished_run(out, config)
    if done is not None:
        print(
            f"{out} holds this run, complete ({done.get('epochs')} epochs, summary.json): nothing to do; "
            "--overwrite retrains it.",
            flush=True,
        )
        return done

    import keras
    import tensorflow as tf

    if config.mixed_precision == "fp16" and not tf.config.list_physical_devices("GPU"):
        raise ValueError(
            "--mixed-precision fp16 needs a GPU: on CPU TensorFlow runs float16 "
            "about 25x slower than float32; use bf16 on CPUs (AVX512-BF16/AMX) or off."
        )

    from keras_regnet import data as data_lib
    from keras_regnet.models import build_model

    keras.utils.set_random_seed(config.seed)
    ds = data_lib.load(
        config.dataset,
        image_size=config.image_size,
        batch_size=config.batch_size,
        data_dir=config.data_dir,
        augment=config.augment,
        seed=config.seed,
        strict_images=config.strict_images,
    )
    input_shape = tuple(ds.input_shape)
    if config.batch_size > ds.num_examples["train"]:
        print(
            f"warning: the batch size {config.batch_size} (--batch-size) exceeds the {ds.num_examples['train']} "
            f"training images: every epoch is one step over all of them ({config.epochs} steps in all), "
            "too few for the learning-rate schedule to train well; use a smaller --batch-size",
            flush=True,
        )
    _check_image_size(
        min(input_shape[:2]), spec, name, f"the image size of {config.dataset!r} ({input_shape[0]}x{input_shape[1]})"
    )

    try:
        os.makedirs(out, exist_ok=True)
        run_folder.write_json(
            os.path.join(out, RUN_FILE),
            {"model": name, "spec": spec.to_dict(), "dataset": config.dataset, "config": config.to_dict()},
        )
    except OSError as error:
        raise ValueError(f"--out {out!r} cannot be written: {error.strerror or error}.") from None

    # Resume from the last complete backup; an unreadable one is reported and the run starts over.
    backup_dir = os.path.join(out, BACKUP_DIR)
    try:
        resume = read_backup(backup_dir)
    except ValueError as error:
        print(f"warning: {error}; starting over", flush=True)
        shutil.rmtree(backup_dir, ignore_errors=True)
        resume = None

    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(MIXED_PRECISION[config.mixed_precision])
    try:
        with strategy.scope():
            zero_init_last = config.init == "default"
            model = build_model(
                config.model, input_shape=input_shape, classes=ds.num_classes, zero_init_last=zero_init_last
            )
            if config.init == "d2l":
                xavier_kernels(model)
            model = float32_classifier(model)
            compile_model(model, config, ds.steps_per_epoch)
            if resume:
                try:
                    model.load_weights(resume["weights"])
                except Exception as error:  # noqa: BLE001 - any unreadable backup means start over
                    print(
                        f"warning: unreadable backup {resume['weights']} ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else ''}); starting over",
                        flush=True,
                    )
                    shutil.rmtree(backup_dir, ignore_errors=True)
                    resume = None
        distribute.fix_multiworker(model, strategy)
        initial_epoch = resume["epoch"] if resume else 0
        before = resume or {"wall_time_s": 0.0, "steps": 0}
        # History rows of epochs the backup holds stay; a fresh start clears an earlier run's logs.
        history_path = os.path.join(out, HISTORY_FILE)
        previous = _trim_history(history_path, initial_epoch)
        if not initial_epoch:
            shutil.rmtree(os.path.join(out, "logs"), ignore_errors=True)
        best_before = max((float(r["val_accuracy"]) for r in previous if r.get("val_accuracy")), default=None)
        if initial_epoch and config.verbose:
            print(f"Resuming from {backup_dir}: {initial_epoch} of {config.epochs} epochs done.", flush=True)
        throughput = epoch_timer(start)
        backup = _backup_callback(backup_dir, before=before, throughput=throughput, start=start)
        # The backup last: an epoch logged but not yet backed up is trimmed from the history and rerun.
        test_each_epoch = ds.test if config.test_each_epoch else None
        callbacks = [*make_callbacks(out, initial_best=best_before, test=test_each_epoch), throughput, backup]
        if strategy.num_replicas_in_sync > 1:
            callbacks.insert(0, distribute.sync_statistics_callback(strategy))
        model.fit(
            ds.train,
            validation_data=ds.validation,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            shuffle=False,
            callbacks=callbacks,
            verbose=config.verbose,
        )
        test_loss, test_accuracy = model.evaluate(ds.test, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    save_model_atomically(model, os.path.join(out, "model.keras"))

    rows = _read_history(history_path)
    val = [float(r["val_accuracy"]) for r in rows if r.get("val_accuracy")]
    # Throughput: the first epoch of this process includes tracing; leave it out when possible.
    seconds = throughput.seconds[1:] or throughput.seconds
    images_per_second = ds.num_examples["train"] * len(seconds) / sum(seconds) if seconds and sum(seconds) > 0 else None
    summary = {
        "model": name,
        "dataset": config.dataset,
        "spec": spec.to_dict(),
        "input_shape": list(input_shape),
        "classes": ds.num_classes,
        "num_examples": ds.num_examples,
        "class_names": list(ds.class_names),  # `keras-regnet predict` names classes with them
        "skipped_images": len(ds.skipped_files),
        "data_source": ds.source,  # where the examples were read from (a folder, TFDS, a download)
        "recipe": config.recipe,
        "complexity": complexity.count(spec, input_shape, ds.num_classes).to_dict(),
        "epochs": config.epochs,
        "resumed_from_epoch": initial_epoch,
        "steps": before["steps"] + throughput.steps,  # the whole run, resumed parts included
        "steps_this_run": throughput.steps,
        "accuracy": {"test": float(test_accuracy), "best_validation": max(val) if val else None},
        "test_loss": float(test_loss),
        "wall_time_s": round(before["wall_time_s"] + time.perf_counter() - start, 3),
        "wall_time_this_run_s": round(time.perf_counter() - start, 3),
        "images_per_second": round(images_per_second, 1) if images_per_second else None,
        "backend": keras.backend.backend(),
        # oneDNN on or off, who chose it, and the CPU: a speed figure means little without them
        "onednn": startup.onednn_state() if keras.backend.backend() == "tensorflow" else None,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "replicas": strategy.num_replicas_in_sync,
        "task": {"type": task_type, "id": task_id, "chief": chief},
        "mixed_precision": config.mixed_precision,
        "config": config.to_dict(),
    }
    run_folder.write_json(os.path.join(out, SUMMARY_FILE), summary)
    shutil.rmtree(backup_dir, ignore_errors=True)  # the run is complete: nothing to resume
    return summary
