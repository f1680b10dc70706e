"""The training recipe: optimizer, schedule, loss, callbacks, distribution, resume.

`train(TrainConfig(...))` is the whole job behind ``keras-regnet train``:

    data.load -> check the output folder -> strategy.scope(): build + compile
    -> fit (progress bar, TensorBoard, CSV log, best checkpoint, per-epoch backup)
    -> evaluate on test -> OUT/model.keras + OUT/summary.json

The defaults train RegNetX32 on the embedded ``digits`` data to >= 95% test
accuracy in well under 5 minutes on 2 CPU cores (see `TrainConfig`).

Recipe (pycls-like): SGD with momentum 0.9, a linear warm-up to the peak
learning rate and a cosine decay to 0 over the rest of the run, weight decay
5e-5, label smoothing off. d2l's plain recipe is
``TrainConfig(schedule="constant", lr=0.05, warmup_epochs=0)``
(``--schedule constant --lr 0.05 --warmup-epochs 0``).

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
  `float32_classifier`). ``"fp16"`` is for GPUs and refused without one: on
  our CPUs it trained RegNetX32 at 13 img/s against 360 img/s in float32
  (TensorFlow has few float16 CPU kernels); ``"bf16"`` is the CPU choice
  (AVX512-BF16/AMX). Keras adds loss scaling for fp16 by itself.
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

from keras_regnet import records as records_lib

SCHEDULES = ("cosine", "constant")
MIXED_PRECISION = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
STRATEGIES = ("auto", "mirrored", "multiworker")


# --------------------------------------------------------------------------- config

def _safe_name(text):
    """A file-name-safe label: spec paths -> file stem, folder paths -> base name."""
    text = os.fspath(text).rstrip("/\\") or "run"
    base = os.path.basename(text)
    if base.endswith(".json"):
        base = base[:-5]
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in base) or "run"


def _check_int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"TrainConfig.{name} must be an integer {allowed}; received {value!r}.")


def _check_float(name, value, low, high=None, *, low_open=False, high_open=True):
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        lo = f"({low}" if low_open else f"[{low}"
        hi = "inf)" if high is None else (f"{high})" if high_open else f"{high}]")
        raise ValueError(f"TrainConfig.{name} must be a number in {lo}, {hi}; received {value!r}.")
    return float(value)


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; every field is checked on creation.

    Attributes:
        model: a zoo name (``"RegNetX32"``, ``"RegNetX002"``, ...) or a spec
            ``.json`` path (`keras_regnet.zoo.resolve`).
        dataset: ``"digits"`` (embedded, offline), a prepared TFDS name, or an
            image folder (see `keras_regnet.data.load`).
        data_dir: TFDS data directory or image folder; None for digits.
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
        out: output folder; None means ``runs/<model>-<dataset>``.
        verbose: Keras fit verbosity: 0 silent, 1 progress bar, 2 one line
            per epoch.
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
                raise ValueError(f"TrainConfig.{name} must be None or a non-empty path; "
                                 f"received {value!r}.")
        if self.image_size is not None:
            _check_int("image_size", self.image_size, 8)
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        self.lr = _check_float("lr", self.lr, 0.0, low_open=True)
        self.momentum = _check_float("momentum", self.momentum, 0.0, 1.0)
        self.weight_decay = _check_float("weight_decay", self.weight_decay, 0.0)
        self.warmup_epochs = _check_float("warmup_epochs", self.warmup_epochs, 0.0)
        self.label_smoothing = _check_float("label_smoothing", self.label_smoothing, 0.0, 1.0)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}; "
                             f"received {self.schedule!r}.")
        if not isinstance(self.augment, bool):
            raise ValueError(f"TrainConfig.augment must be True or False; received {self.augment!r}.")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"TrainConfig.mixed_precision must be one of "
                             f"{', '.join(MIXED_PRECISION)}; received {self.mixed_precision!r}.")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"TrainConfig.strategy must be one of {', '.join(STRATEGIES)}; "
                             f"received {self.strategy!r}.")
        _check_int("seed", self.seed, 0)
        _check_int("verbose", self.verbose, 0, 2)
        if self.out is None:
            self.out = os.path.join("runs", f"{_safe_name(self.model)}-{_safe_name(self.dataset)}")

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
        0.0, decay_steps=max(1, total - warmup), alpha=alpha,
        warmup_target=config.lr, warmup_steps=warmup)


def make_optimizer(config, steps_per_epoch):
    """SGD (momentum) with the config's learning-rate schedule and decoupled weight decay.

    `keras_regnet.optimizers.SGD` is Keras' SGD with a cheaper-to-trace weight decay.
    """
    from keras_regnet.optimizers import SGD

    return SGD(
        learning_rate=make_learning_rate(config, steps_per_epoch), momentum=config.momentum,
        weight_decay=config.weight_decay or None)


def _register_loss():
    import keras

    @keras.saving.register_keras_serializable(package="keras_regnet")
    class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
        """Sparse (integer) labels -> one-hot -> categorical cross-entropy with label smoothing."""

        def __init__(self, from_logits=False, label_smoothing=0.0,
                     name="sparse_categorical_crossentropy", reduction="sum_over_batch_size",
                     dtype=None):
            super().__init__(name=name, reduction=reduction, dtype=dtype)
            self.from_logits = from_logits
            self.label_smoothing = label_smoothing

        def call(self, y_true, y_pred):
            classes = y_pred.shape[-1]
            y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
            one_hot = keras.ops.one_hot(y_true, classes, dtype=y_pred.dtype)
            return keras.losses.categorical_crossentropy(
                one_hot, y_pred, from_logits=self.from_logits,
                label_smoothing=self.label_smoothing)

        def get_config(self):
            return {**super().get_config(), "from_logits": self.from_logits,
                    "label_smoothing": self.label_smoothing}

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


def classifier_from_logits(model):
    """True if `model` outputs logits, False for softmax probabilities.

    Looks at the activation of the final layer (a Dense or Activation layer,
    or a Softmax layer); other activations are refused.
    """
    import keras

    layer = model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return False
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name == "softmax":
        return False
    if name == "linear" or (activation is None and isinstance(layer, keras.layers.Dense)):
        return True
    raise ValueError(
        f"the model's final layer {layer.name!r} has activation {name or activation!r}; "
        "training needs classifier_activation='softmax' or None (logits).")


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
            from_logits=from_logits, label_smoothing=config.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch), loss=loss,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
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


# --------------------------------------------------------------------------- distribution

def make_strategy(name):
    """The `tf.distribute` strategy for `name` (create it before any other TF work)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; received {name!r}.")
    if name == "auto":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    text = os.environ.get("TF_CONFIG")
    if text:
        try:
            tf_config = json.loads(text)
            tf_config["cluster"], tf_config["task"]["type"]  # noqa: B018 (presence check)
        except (ValueError, KeyError, TypeError):
            raise ValueError("strategy 'multiworker' needs TF_CONFIG to be JSON with 'cluster' and "
                             f"'task' ({{'type': ..., 'index': ...}}); received {text!r}.") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def task_of(strategy):
    """(task_type, task_id, is_chief) of this process; (None, None, True) when not multi-worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if not task_type:
        return None, None, True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return task_type, task_id, chief


def fix_multiworker(model, strategy):
    """Work around Keras 3.15's `fit`/`evaluate` failing under MultiWorkerMirroredStrategy.

    Keras's TensorFlow trainer has two multi-worker bugs (keras-team/keras#20585):

    1. Before the first step it builds the model from one input batch, got by
       *reducing* the per-replica batch across workers; that eager collective
       fails ("Attempt to convert a value (PerReplica...) to a Tensor"). Only
       shapes and dtypes matter there, so the local replica's batch is used.
    2. It averages each step's logs across workers with
       ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalar
       loss/metric values ("Invalid reduction dimension 0 for input with 0
       dimensions"). The steps here return them with shape ``(1,)``, which that
       reduction averages back to scalars.

    Instance-level patches (no global monkey-patching); a no-op for any other
    strategy. Call after `compile_model`.
    """
    import tensorflow as tf
    from keras import tree

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local, next(it))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def rank1(value):
        if tf.is_tensor(value) and value.shape.rank == 0:
            return tf.reshape(value, (1,))
        return value

    def with_rank1_logs(step):
        def wrapped(data):
            return tree.map_structure(rank1, step(data))
        return wrapped

    object.__setattr__(model, "_maybe_symbolic_build", _maybe_symbolic_build.__get__(model))
    object.__setattr__(model, "train_step", with_rank1_logs(model.train_step))
    object.__setattr__(model, "test_step", with_rank1_logs(model.test_step))
    return model


# --------------------------------------------------------------------------- output folder

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
HISTORY_FILE = "history.csv"


def _identity(name, spec, config):
    return {"model": name, "spec": spec.to_dict(), "dataset": config.dataset}


def check_out_dir(out, identity):
    """Refuse an output folder that holds a run of another model or dataset."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} exists and is not a folder.")
    for file in (RUN_FILE, SUMMARY_FILE):
        path = os.path.join(out, file)
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                found = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(f"--out {out!r} holds an unreadable {file} ({error}); "
                             "choose another folder or remove it.") from None
        other = {key: found.get(key) for key in identity}
        if other != identity:
            raise ValueError(
                f"--out {out!r} holds a run of model {other['model']!r} on dataset "
                f"{other['dataset']!r} (see {file}); this run is {identity['model']!r} on "
                f"{identity['dataset']!r}: choose another --out folder.")
        return


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
        return {"epoch": epoch, "weights": weights, "wall_time_s": float(state.get("wall_time_s", 0.0)),
                "steps": int(state.get("steps", 0))}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"unreadable backup {path}: {error}") from None


def _backup_callback(backup_dir, *, before, throughput, start):
    """Saves weights + optimizer state after every epoch; the state file is the commit point."""
    import keras

    class EpochBackup(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            name = f"epoch-{epoch + 1}.weights.h5"
            save_model_atomically(self.model, os.path.join(backup_dir, name))
            records_lib.write_json(os.path.join(backup_dir, BACKUP_STATE), {
                "epoch": epoch + 1, "weights": name,
                "wall_time_s": before["wall_time_s"] + time.perf_counter() - start,
                "steps": before["steps"] + throughput.steps})
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
    records_lib.write_csv(path, list(rows[0]), rows)
    return rows


# --------------------------------------------------------------------------- callbacks

def _sync_statistics_callback(strategy):
    """Average BatchNorm moving statistics across replicas at the end of every epoch.

    Keras 3's BatchNormalization keeps its moving mean/variance per replica
    (tf.keras made them ON_READ/MEAN variables): under a multi-replica strategy
    each worker would end with the statistics of its own shard only, and the
    workers' saved models would differ. This callback all-reduces every
    non-trainable float variable (the moving statistics) to the replicas' mean,
    so all replicas hold -- and save -- the same model. It runs first among the
    callbacks, before the epoch is backed up or checkpointed.
    """
    import keras
    import tensorflow as tf

    class SyncStatistics(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            variables = [v for v in self.model.non_trainable_variables
                         if "float" in str(v.dtype)]

            def replica_fn():
                ctx = tf.distribute.get_replica_context()
                means = ctx.all_reduce("MEAN", [tf.identity(v.value) for v in variables])
                for variable, mean in zip(variables, means):
                    variable.value.assign(mean)

            self._sync = tf.function(lambda: strategy.run(replica_fn)) if variables else None

        def on_epoch_end(self, epoch, logs=None):
            if self._sync is not None:
                self._sync()

    return SyncStatistics()


def _throughput_callback():
    import keras

    class Throughput(keras.callbacks.Callback):
        """Seconds spent in training steps per epoch (validation excluded) and steps run."""

        def __init__(self):
            super().__init__()
            self.seconds, self.steps = [], 0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()
            self._end = None

        def on_train_batch_end(self, batch, logs=None):
            self._end = time.perf_counter()
            self.steps += 1

        def on_epoch_end(self, epoch, logs=None):
            if self._end is not None:
                self.seconds.append(self._end - self._start)

    return Throughput()


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


def make_callbacks(out, *, initial_best=None):
    """Best model, TensorBoard and CSV log, all under `out` (the epoch backup comes after them)."""
    import keras

    return [
        _best_model_callback(os.path.join(out, "best.keras"), initial_best),
        keras.callbacks.TensorBoard(os.path.join(out, "logs")),
        keras.callbacks.CSVLogger(os.path.join(out, HISTORY_FILE), append=True),
    ]


# --------------------------------------------------------------------------- the job

def _check_image_size(side, spec, model_name, what):
    """`what` names the size's origin, e.g. "--image-size 16"."""
    if side < spec.min_input_size:
        raise ValueError(f"{what} is below {spec.min_input_size}, the smallest input side "
                         f"{model_name} accepts (it downsamples {spec.min_input_size}x); "
                         f"use --image-size {spec.min_input_size} or more.")


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

    identity = _identity(name, spec, config)
    if config.strategy != "multiworker":  # (a worker's folder is known once its strategy is)
        check_out_dir(config.out, identity)

    # The strategy before any other TensorFlow work (MultiWorkerMirroredStrategy needs it).
    strategy = make_strategy(config.strategy)
    task_type, task_id, chief = task_of(strategy)
    out = config.out if chief else os.path.join(config.out, f"{task_type}-{task_id}")
    check_out_dir(out, identity)

    import keras
    import tensorflow as tf

    if config.mixed_precision == "fp16" and not tf.config.list_physical_devices("GPU"):
        raise ValueError("--mixed-precision fp16 needs a GPU: on CPU TensorFlow runs float16 "
                         "~25x slower than float32 (measured: 13 vs 360 img/s); use bf16 on "
                         "CPUs (AVX512-BF16/AMX) or off.")

    from keras_regnet import data as data_lib
    from keras_regnet.models import build_model

    keras.utils.set_random_seed(config.seed)
    ds = data_lib.load(config.dataset, image_size=config.image_size,
                       batch_size=config.batch_size, data_dir=config.data_dir,
                       augment=config.augment, seed=config.seed)
    input_shape = tuple(ds.input_shape)
    _check_image_size(min(input_shape[:2]), spec, name,
                      f"the image size of {config.dataset!r} ({input_shape[0]}x{input_shape[1]})")

    try:
        os.makedirs(out, exist_ok=True)
        records_lib.write_json(os.path.join(out, RUN_FILE), {**identity, "config": config.to_dict()})
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
            model = build_model(config.model, input_shape=input_shape, classes=ds.num_classes)
            model = float32_classifier(model)
            compile_model(model, config, ds.steps_per_epoch)
            if resume:
                try:
                    model.load_weights(resume["weights"])
                except Exception as error:  # noqa: BLE001 - any unreadable backup means start over
                    print(f"warning: unreadable backup {resume['weights']} ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''}); starting over", flush=True)
                    shutil.rmtree(backup_dir, ignore_errors=True)
                    resume = None
        fix_multiworker(model, strategy)
        initial_epoch = resume["epoch"] if resume else 0
        before = resume or {"wall_time_s": 0.0, "steps": 0}
        # History rows of epochs the backup holds stay; a fresh start clears an earlier run's logs.
        history_path = os.path.join(out, HISTORY_FILE)
        previous = _trim_history(history_path, initial_epoch)
        if not initial_epoch:
            shutil.rmtree(os.path.join(out, "logs"), ignore_errors=True)
        best_before = max((float(r["val_accuracy"]) for r in previous if r.get("val_accuracy")),
                          default=None)
        if initial_epoch and config.verbose:
            print(f"Resuming from {backup_dir}: {initial_epoch} of {config.epochs} epochs done.", flush=True)
        throughput = _throughput_callback()
        backup = _backup_callback(backup_dir, before=before, throughput=throughput, start=start)
        # The backup last: an epoch logged but not yet backed up is trimmed from the history and rerun.
        callbacks = [*make_callbacks(out, initial_best=best_before), throughput, backup]
        if strategy.num_replicas_in_sync > 1:
            callbacks.insert(0, _sync_statistics_callback(strategy))
        model.fit(ds.train, validation_data=ds.validation, epochs=config.epochs, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=config.verbose)
        test_loss, test_accuracy = model.evaluate(ds.test, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    save_model_atomically(model, os.path.join(out, "model.keras"))

    rows = _read_history(history_path)
    val = [float(r["val_accuracy"]) for r in rows if r.get("val_accuracy")]
    # Throughput: the first epoch of this process includes tracing; leave it out when possible.
    seconds = throughput.seconds[1:] or throughput.seconds
    images_per_second = (ds.num_examples["train"] * len(seconds) / sum(seconds)
                         if seconds and sum(seconds) > 0 else None)
    summary = {
        "model": name,
        "dataset": config.dataset,
        "spec": spec.to_dict(),
        "input_shape": list(input_shape),
        "classes": ds.num_classes,
        "num_examples": ds.num_examples,
        "complexity": complexity.count(spec, input_shape, ds.num_classes).to_dict(),
        "epochs": config.epochs,
        "resumed_from_epoch": initial_epoch,
        "steps": before["steps"] + throughput.steps,  # the whole run, resumed parts included
        "steps_this_run": throughput.steps,
        "accuracy": {"test": float(test_accuracy),
                     "best_validation": max(val) if val else None},
        "test_loss": float(test_loss),
        "wall_time_s": round(before["wall_time_s"] + time.perf_counter() - start, 3),
        "wall_time_this_run_s": round(time.perf_counter() - start, 3),
        "images_per_second": round(images_per_second, 1) if images_per_second else None,
        "replicas": strategy.num_replicas_in_sync,
        "task": {"type": task_type, "id": task_id, "chief": chief},
        "mixed_precision": config.mixed_precision,
        "config": config.to_dict(),
    }
    records_lib.write_json(os.path.join(out, SUMMARY_FILE), summary)
    shutil.rmtree(backup_dir, ignore_errors=True)  # the run is complete: nothing to resume
    return summary
