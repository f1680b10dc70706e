"""Trials in worker processes: flat memory, N trials at once, a crash costs one trial.

Why: TensorFlow keeps memory per network built in a process (about 70 MB a
network even after `keras.backend.clear_session()` and `gc.collect()`), so a
long search in one process grows until it runs out. Here KerasTuner's oracle
stays in the calling process (its seed, resume and duplicate rules are
unchanged) and each trial's build + fit runs in a worker process that
exits, and is replaced, once its memory passes a limit. N workers train N
trials at once, each with 1/N of the CPU threads; a worker that dies (a
crash, an OOM kill) costs only its current trial, which goes back to the
oracle as ``INVALID`` (KerasTuner retries it once, then records it as failed
with the reason).

`run_searches` drives one or more searches (one per design space in a
study) through one pool, so workers never wait at the boundary between two
searches; with ``sequential=True`` (KerasTuner's distributed workers, whose
chief serves one search at a time) a search starts when the previous one has
ended.
"""

import dataclasses
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import time
import traceback
import zlib

from keras_regnet.validation import check_int

_IDLE, _STOPPED = "IDLE", "STOPPED"
DEFAULT_MEMORY_LIMIT_MB = 1500  # a worker past this peak RSS is replaced after its trial
DEFAULT_TRIALS_PER_WORKER = 50
CHECKPOINT = "checkpoint.weights.h5"  # KerasTuner's file name for a trial's best weights (Keras 3)


def default_workers():
    """One worker per CPU core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_workers(workers):
    """A worker count: an int in 1..256."""
    return check_int("workers (--workers)", workers, 1, 256)


@dataclasses.dataclass
class Search:
    """One KerasTuner search run by the pool.

    ``oracle`` is a KerasTuner oracle (or the `OracleClient` of a distributed
    worker); ``space`` a design-space dict (`DesignSpace.to_dict()` with the
    data's input shape and classes); ``project_dir`` where trial checkpoints
    go (KerasTuner's layout: ``trial_<id>/checkpoint.weights.h5``);
    ``save_best`` keeps the best-epoch weights of any trial that beats the
    best so far (enough for `Tuner.load_model` of the best trial);
    ``on_trial_end(trial)`` saves and reports (after every end, retries included).
    """

    name: str
    oracle: object
    space: dict
    project_dir: str
    epochs: int
    max_trials: int
    save_best: bool = False
    hyperband: bool = False
    on_trial_end: object = None
    tuner_id: str = "tuner0"


@dataclasses.dataclass(frozen=True)
class WorkerSetup:
    """What every worker process loads once: the data and the training recipe."""

    dataset: str
    data_dir: object
    image_size: object
    batch_size: int
    seed: int
    train_config: dict
    validation_fraction: float = 0.1
    train_examples: int | None = None  # a fixed stratified subset of the train split (data.load)
    score_split: str = "validation"
    final_validation_only: bool = False
    threads: int = 1
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB
    trials_per_worker: int = DEFAULT_TRIALS_PER_WORKER


# --------------------------------------------------------------------------- worker process


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def trial_seed(seed, trial_id, replicate=0):
    """The seed of one training: the run's seed, the trial, and which repeat of it (0: the trial itself).

    It seeds the weights and the data order, so a trial trains the same way
    whichever worker runs it and whatever that worker ran before.
    """
    digits = str(trial_id)
    number = int(digits) if digits.isdigit() else zlib.crc32(digits.encode())
    return (int(seed) * 1_000_003 + number + int(replicate) * 7_919) % (2**31 - 1)


def load_data(setup, seed):
    """The setup's dataset, its train order shuffled by `seed`; (train, scored split, Dataset).

    Loaded per training (digits: milliseconds), so no shuffle state carries
    over from one training to the next. The scored split is the validation
    split, or validation + test (``score_split="validation+test"``: a study
    scores on every image it does not train on).
    """
    from keras_regnet import data as data_lib

    ds = data_lib.load(
        setup.dataset,
        image_size=setup.image_size,
        batch_size=setup.batch_size,
        data_dir=setup.data_dir,
        validation_fraction=setup.validation_fraction,
        seed=seed,
        train_examples=setup.train_examples,
    )
    scored = ds.validation if setup.score_split == "validation" else ds.validation.concatenate(ds.test)
    return ds.train, scored, ds


def _die_with_parent():
    """Linux: this process gets SIGKILL when its parent dies (a killed search leaves no orphans)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def configure_tensorflow(threads):
    """This process's TensorFlow as a trial worker runs it: quiet, `threads` CPU threads, two grappler passes off."""
    from keras_regnet import startup

    startup.quiet_tensorflow("trial")  # no CUDA error or absl banner per worker; oneDNN as measured for trials
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    # Two of grappler's passes cost time on every new network's first step and change nothing here
    # (channels-last CPU graphs; Keras' nested step functions): same errors, ~7% less per trial
    # (bench/README.md, "Design-space trials").
    tf.config.optimizer.set_experimental_options({"layout_optimizer": False, "function_optimization": False})


def _worker_main(conn, setup):
    """A worker process: load the data once, then run trials until told to stop or full."""
    _die_with_parent()
    configure_tensorflow(setup.threads)
    load_data(setup, setup.seed)  # fails here (not per trial) when the data cannot be read
    conn.send(("ready", os.getpid()))
    done = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the coordinator is gone
            return
        if message is None:
            return
        result = _run_trial(message, setup)
        done += 1
        result["peak_rss_mb"] = _peak_rss_mb()
        result["recycle"] = result["peak_rss_mb"] > setup.memory_limit_mb or done >= setup.trials_per_worker
        conn.send(("done", message["trial_id"], result))
        if result["recycle"]:
            return


def _run_trial(task, setup):
    """Build, fit and report one trial; exceptions become a failed result, never a dead worker.

    The weights and the data order come from the task's seed alone (default:
    `trial_seed` of the run's seed and the trial id); ``task["train_config"]``
    replaces fields of the recipe (the proxy check's longer schedule).
    """
    import keras
    import keras_tuner
    import numpy as np

    from keras_regnet import design_spaces, training
    from keras_regnet.tuning import DesignSpaceHyperModel

    start = time.perf_counter()
    history, score_seconds = {}, None
    try:
        keras.backend.clear_session()
        seed = task.get("seed", trial_seed(setup.seed, task["trial_id"]))
        keras.utils.set_random_seed(seed)
        train, scored, ds = load_data(setup, seed)
        space = design_spaces.get(**task["space"])
        hypermodel = DesignSpaceHyperModel(
            space,
            input_shape=ds.input_shape,
            classes=ds.num_classes,
            train_config=training.TrainConfig(**{**setup.train_config, **task.get("train_config", {})}),
            steps_per_epoch=ds.steps_per_epoch,
            zero_init_last=task.get("zero_init_last", True),
        )
        hp = keras_tuner.HyperParameters()
        hp.values = dict(task["values"])
        model = hypermodel.build(hp)
        if task.get("load_weights"):
            model.load_weights(task["load_weights"])
        timer = training.epoch_timer(start)
        keeper = _best_weights_callback(timer)
        # A study reads only the final epoch's error: it validates once, after the last epoch.
        final_only = setup.final_validation_only and task["epochs"] > task.get("initial_epoch", 0)
        model.fit(
            train,
            validation_data=None if final_only else scored,
            epochs=task["epochs"],
            shuffle=False,
            initial_epoch=task.get("initial_epoch", 0),
            verbose=0,
            callbacks=[timer, keeper],
        )
        if final_only:
            scoring = time.perf_counter()
            keeper.record_validation(*final_validation(model, scored))
            score_seconds = time.perf_counter() - scoring
        history = keeper.history
        threshold = task.get("save_above")
        if (
            task.get("save_path")
            and keeper.best_weights is not None
            and (threshold is None or keeper.best >= threshold)
        ):
            model.set_weights(keeper.best_weights)
            training.save_model_atomically(model, task["save_path"])
        status, message = "COMPLETED", None
        final = history.get("val_accuracy", [None])[-1] if history else None
        if final is None or not np.isfinite(final):
            status, message = "FAILED", "no finite val_accuracy (the loss diverged)"
    except keras_tuner.errors.FailedTrialError as error:
        status, message = "FAILED", f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - a trial's error must not end the search
        status = "INVALID"
        message = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
    finally:
        keras.backend.clear_session()
    seconds = time.perf_counter() - start
    # score_seconds: the final scoring pass (part of seconds), None where validation ran inside fit.
    return {
        "status": status,
        "message": message,
        "history": history,
        "seconds": seconds,
        "score_seconds": score_seconds,
    }


VALIDATION_PIXELS = 1024 * 32 * 32  # pixels an eager validation call takes (1,024 images at 32x32)
TRACED_FROM_CHUNKS = 4  # a scored split of more chunks than this runs through one traced call (TensorFlow)


def final_validation(model, dataset, chunk=None):
    """(loss, accuracy) of a compiled classifier on `dataset`, in chunks of `chunk` images.

    Why: a study validates each network once; tracing and optimising Keras'
    test step for that single pass costs more than the pass (`evaluate`
    1.35 s for a 12-block net, 3.70 s for 31 blocks; eager 0.73 / 1.37 s,
    bench/README.md "Inside one trial, second round"). An eager pass costs
    mostly per layer call, not per image, so the default chunk is as many
    images as make `VALIDATION_PIXELS`: the study's 898 scored 32x32 images
    go in one eager call (0.65 -> 0.49 s against chunks of 512; "third
    round"), while 224x224 images go 20 at a time (memory). A split of more
    than `TRACED_FROM_CHUNKS` chunks (Fashion-MNIST's 64,000 images not
    trained on) runs on TensorFlow through one traced call of a fixed chunk
    shape instead, where tracing once is cheaper than many eager calls
    (bench/README.md, "Scoring a large split"). The split is read chunk by
    chunk, never held whole. Same loss and accuracy as `model.evaluate` up to
    float rounding.
    """
    import keras
    import numpy as np

    loss_sum, correct, count = 0.0, 0, 0
    call = None
    for x, y in _chunks(dataset, chunk):
        if call is None:
            call = _scoring_call(model, dataset, len(x))
        outputs = call(x)
        loss_sum += float(keras.ops.convert_to_numpy(model.loss(y, outputs))) * len(x)
        predicted = np.argmax(keras.ops.convert_to_numpy(outputs), axis=-1)  # any backend's tensor
        correct += int(np.sum(predicted == y.reshape(-1)))
        count += len(x)
    return loss_sum / count, correct / count


def _chunks(dataset, chunk):
    """(images, labels) numpy chunks of `chunk` images (default: `VALIDATION_PIXELS` worth), the last one shorter."""
    import numpy as np

    images, labels, held = [], [], 0
    for x, y in dataset.as_numpy_iterator():
        if chunk is None:
            chunk = max(1, VALIDATION_PIXELS // max(1, x.shape[1] * x.shape[2]))
        images.append(x)
        labels.append(y)
        held += len(x)
        while held >= chunk:
            all_x, all_y = np.concatenate(images), np.concatenate(labels)
            yield all_x[:chunk], all_y[:chunk]
            images, labels, held = [all_x[chunk:]], [all_y[chunk:]], held - chunk
    if held:
        yield np.concatenate(images), np.concatenate(labels)


def _scoring_call(model, dataset, chunk):
    """`model(x, training=False)`: eager, or traced once for a full chunk (shorter chunks zero-padded)
    where the split holds more than `TRACED_FROM_CHUNKS` chunks on TensorFlow."""
    import keras

    eager = lambda x: model(x, training=False)  # noqa: E731
    if keras.backend.backend() != "tensorflow" or not isinstance(model, keras.Model):
        return eager
    import numpy as np
    import tensorflow as tf

    batches = int(dataset.cardinality())
    first = next(iter(dataset))[0]
    if batches < 0 or batches * int(first.shape[0]) <= TRACED_FROM_CHUNKS * chunk:
        return eager
    traced = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def call(x):
        if len(x) == chunk:
            return traced(x)
        padded = np.concatenate([x, np.zeros((chunk - len(x), *x.shape[1:]), x.dtype)])
        return traced(padded)[: len(x)]

    return call


def _best_weights_callback(timer):
    """Per-epoch logs (plus `timer`'s seconds since the trial began) and the best epoch's weights,
    in memory. Replaces KerasTuner's per-epoch checkpoint file: weights reach the disk at most once
    a trial, and only when something will read them. Runs after `timer` (a `training.epoch_timer`).
    """
    import keras

    class BestWeights(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = {}
            self.best = -float("inf")
            self.best_weights = None

        def record_validation(self, loss, accuracy):
            """The last epoch's validation, measured after `fit` (`final_validation`)."""
            for key, value in (("val_loss", loss), ("val_accuracy", accuracy)):
                values = self.history.setdefault(key, [None] * len(self.history.get("seconds", [])))
                values[-1] = float(value)
            if accuracy > self.best:
                self.best = float(accuracy)
                self.best_weights = self.model.get_weights()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {}, seconds=timer.elapsed[-1])
            done = len(self.history.get("seconds", []))
            for key, value in logs.items():  # None where an epoch had no such metric (no validation)
                self.history.setdefault(key, [None] * done).append(float(value))
            for values in self.history.values():
                values.extend([None] * (done + 1 - len(values)))
            accuracy = logs.get("val_accuracy")
            if accuracy is not None and accuracy > self.best:
                self.best = float(accuracy)
                self.best_weights = self.model.get_weights()

    return BestWeights()


# --------------------------------------------------------------------------- pool


class _Worker:
    """One worker process, started as ``python -m keras_regnet.trial_workers FD``.

    A fresh interpreter (not `multiprocessing`'s spawn, which re-imports the
    caller's main module): `run_search` works from any script or notebook. The
    two ends of a socket pair carry pickled messages; the worker's death closes
    its end, which wakes the coordinator.
    """

    def __init__(self, setup, slot):
        self.slot = slot
        parent, child = socket.socketpair()
        env = dict(os.environ)  # the worker quiets TensorFlow itself (keras_regnet.startup)
        with child:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "keras_regnet.trial_workers", str(child.fileno())],
                pass_fds=[child.fileno()],
                env=env,
            )
        self.conn = multiprocessing.connection.Connection(parent.detach())
        self.conn.send(dataclasses.asdict(setup))
        self.ready = False
        self.task = None  # (search index, trial) while busy

    def alive(self):
        return self.process.poll() is None

    def stop(self, timeout=5.0):
        try:
            if self.alive() and self.task is None and self.ready:
                self.conn.send(None)
                self.process.wait(timeout)
        except (OSError, EOFError, subprocess.TimeoutExpired):
            pass
        if self.alive():
            self.process.kill()
            self.process.wait(timeout)
        self.conn.close()


def _died_message(process):
    code = process.poll()
    if code is not None and code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory, or by a user)" if name == "SIGKILL" else ""
        return f"worker process {process.pid} died from {name}{hint}"
    return f"worker process {process.pid} exited with code {code} during the trial"


class _Progress:
    """One line per ended trial: what it was, how long, and the ETA of the whole run."""

    def __init__(self, searches):
        self.total = sum(s.max_trials for s in searches)
        self.done = sum(_ended(s.oracle) for s in searches)
        self.done_before = self.done
        self.start = time.perf_counter()

    def line(self, search, trial):
        from keras_regnet.tuning import format_trial

        self.done += 1
        rate = (self.done - self.done_before) / max(time.perf_counter() - self.start, 1e-9)
        left = max(self.total - self.done, 0)
        eta = "?" if rate <= 0 else _duration(left / rate)
        prefix = f"[{search.name}] " if search.name else ""
        return f"{prefix}{format_trial(trial)} | {self.done}/{self.total} ended, {rate * 3600:.0f} trials/h, ETA {eta}"


def _ended(oracle):
    trials = getattr(oracle, "trials", None)
    if not isinstance(trials, dict):
        return 0
    return sum(1 for t in trials.values() if t.status in ("COMPLETED", "FAILED"))


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def run_searches(searches, setup, *, workers, sequential=False, poll_seconds=1.0, log=None):
    """Run every search's trials in `workers` processes; returns when all searches have ended.

    KerasTuner semantics are kept: trials come from ``oracle.create_trial``
    (one tuner id per worker slot), per-epoch metrics go to
    ``oracle.update_trial`` and each trial ends with ``oracle.end_trial``, so
    a search killed and re-run resumes (the oracle re-queues the trials that
    were running) and no completed trial runs twice.
    """
    check_workers(workers)
    log = log or (lambda text: print(text, flush=True))
    searches = list(searches)
    progress = _Progress(searches)
    # Per search: which slots have been told STOPPED, and whether it has ended.
    stopped = [set() for _ in searches]
    ended = [False] * len(searches)
    pool = {}

    def next_search(slot):
        for i in range(len(searches)):
            if ended[i]:
                continue
            if slot not in stopped[i]:
                return i
            if sequential:
                return None
        return None

    def start(slot):
        pool[slot] = _Worker(setup, slot)

    def finish_trial(worker, status, message, history):
        index, trial = worker.task
        worker.task = None
        search = searches[index]
        epochs = len(next(iter(history.values()), [])) if history else 0
        first = trial.hyperparameters.values.get("tuner/initial_epoch", 0) if search.hyperband else 0
        if history:  # every epoch's metrics, the ones KerasTuner does not take too (epochs without validation)
            from keras_regnet import run_folder

            trial_dir = os.path.join(search.project_dir, f"trial_{trial.trial_id}")
            os.makedirs(trial_dir, exist_ok=True)
            run_folder.write_json(os.path.join(trial_dir, "history.json"), history)
        for epoch in range(epochs):
            metrics = {k: v[epoch] for k, v in history.items() if v[epoch] is not None}
            if "val_accuracy" not in metrics:  # an epoch without validation (a study validates the last)
                continue
            search.oracle.update_trial(trial.trial_id, metrics, step=first + epoch)
        if status == "COMPLETED" and "val_accuracy" not in history:
            status, message = "FAILED", "the trial reported no val_accuracy"
        trial.status, trial.message = status, message
        search.oracle.end_trial(trial)
        if status == "INVALID":  # re-queued for retry: every slot may take it
            stopped[index].clear()
        ended_trial = search.oracle.get_trial(trial.trial_id)
        if search.on_trial_end:
            search.on_trial_end(ended_trial)
        if ended_trial.status in ("COMPLETED", "FAILED"):
            log(progress.line(search, ended_trial))
        elif message:
            log(f"[{search.name}] trial {trial.trial_id} will be retried: {message.splitlines()[0]}")

    def assign(worker):
        while True:
            index = next_search(worker.slot)
            if index is None:
                return False
            search = searches[index]
            tuner_id = f"{search.tuner_id}-w{worker.slot}"
            trial = search.oracle.create_trial(tuner_id)
            if trial.status == _STOPPED:
                stopped[index].add(worker.slot)
                continue
            if trial.status == _IDLE:  # Hyperband waits for running trials of its bracket
                return False
            worker.task = (index, trial)
            worker.conn.send(_task(search, trial))
            return True

    failed_starts = 0
    try:
        for slot in range(workers):
            start(slot)
        while True:
            for i in range(len(searches)):
                if (
                    not ended[i]
                    and len(stopped[i]) == workers
                    and not any(w.task and w.task[0] == i for w in pool.values())
                ):
                    ended[i] = True
            if all(ended):
                break
            for worker in list(pool.values()):
                if worker.ready and worker.task is None:
                    assign(worker)
            waitables = {}
            for worker in pool.values():
                waitables[worker.conn] = worker
            ready = multiprocessing.connection.wait(list(waitables), timeout=poll_seconds)
            for worker in {id(waitables[h]): waitables[h] for h in ready}.values():
                if pool.get(worker.slot) is not worker:
                    continue

                def done(worker, result):
                    history = result["history"]
                    if history:
                        history["worker_peak_rss_mb"] = [result["peak_rss_mb"]] * len(history["seconds"])
                    finish_trial(worker, result["status"], result["message"], history)

                if not _drain(worker, done) and worker.alive():
                    continue
                _reap(worker.process)
                if worker.task is not None:  # it died during a trial: the trial goes back to the oracle
                    finish_trial(worker, "INVALID", _died_message(worker.process), {})
                if not worker.ready:
                    failed_starts += 1
                    if failed_starts >= 3:
                        raise RuntimeError(
                            f"trial workers die while starting ({_died_message(worker.process)}); "
                            "run one trial in the foreground to see why"
                        )
                else:
                    failed_starts = 0
                worker.stop()
                start(worker.slot)
    finally:
        for worker in pool.values():
            worker.stop()


def run_tasks(tasks, setup, *, workers, on_result, poll_seconds=1.0):
    """Train plain tasks (no oracle) in `workers` processes: the study's seed and proxy checks.

    Each task is a dict like `_task`'s (``trial_id``, ``values``, ``space``,
    ``epochs``) plus its ``key``, ``seed`` and optional ``train_config``;
    ``on_result(task, result)`` gets each result as it arrives (a worker that
    dies costs its task one retry, then the task fails with the reason).
    """
    check_workers(workers)
    queue = [dict(task, tries=0) for task in tasks]
    pool = {slot: _Worker(setup, slot) for slot in range(min(workers, len(queue)))}
    failed_starts = 0
    try:
        while queue or any(w.task is not None for w in pool.values()):
            for worker in pool.values():
                if worker.ready and worker.task is None and queue:
                    worker.task = queue.pop(0)
                    worker.conn.send(worker.task)
            ready = multiprocessing.connection.wait([w.conn for w in pool.values()], timeout=poll_seconds)
            for worker in [w for w in list(pool.values()) if w.conn in ready]:

                def done(worker, result):
                    task, worker.task = worker.task, None
                    on_result(task, result)

                if not _drain(worker, done) and worker.alive():
                    continue
                _reap(worker.process)
                if worker.task is not None:
                    task, worker.task = worker.task, None
                    task["tries"] += 1
                    if task["tries"] <= 1:
                        queue.insert(0, task)
                    else:
                        on_result(task, {"status": "FAILED", "message": _died_message(worker.process), "history": {}})
                failed_starts = 0 if worker.ready else failed_starts + 1
                if failed_starts >= 3:
                    raise RuntimeError(f"trial workers die while starting ({_died_message(worker.process)})")
                worker.stop()
                pool[worker.slot] = _Worker(setup, worker.slot)
    finally:
        for worker in pool.values():
            worker.stop()


def _drain(worker, done):
    """Handle the worker's pending messages (a recycled worker's last result first); True once it has exited.

    ``done(worker, result)`` takes each finished trial's result.
    """
    while _poll(worker.conn):
        message = _receive(worker.conn)
        if message is None:
            return True
        if message[0] == "ready":
            worker.ready = True
        elif message[0] == "done":
            done(worker, message[2])
            if message[2]["recycle"]:
                return True
    return False


def _reap(process):
    """Wait for an exiting worker process; kill it if it hangs."""
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _poll(conn):
    try:
        return conn.poll()
    except (EOFError, OSError):
        return False


def _receive(conn):
    """The next message, or None once the worker's end of the pipe is closed."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _task(search, trial):
    values = dict(trial.hyperparameters.values)
    task = {"trial_id": trial.trial_id, "values": values, "space": search.space, "epochs": search.epochs}
    trial_dir = os.path.join(search.project_dir, f"trial_{trial.trial_id}")
    if search.hyperband:
        task["epochs"] = int(values["tuner/epochs"])
        task["initial_epoch"] = int(values.get("tuner/initial_epoch", 0))
        if values.get("tuner/trial_id"):
            task["load_weights"] = os.path.join(search.project_dir, f"trial_{values['tuner/trial_id']}", CHECKPOINT)
        task["save_path"] = os.path.join(trial_dir, CHECKPOINT)  # later rounds start from it
    elif search.save_best:
        task["save_path"] = os.path.join(trial_dir, CHECKPOINT)
        best = search.oracle.get_best_trials(1)
        task["save_above"] = best[0].score if best and best[0].score is not None else None
    return task


if __name__ == "__main__":  # a worker process (see _Worker)
    _connection = multiprocessing.connection.Connection(int(sys.argv[1]))
    _worker_main(_connection, WorkerSetup(**_connection.recv()))
