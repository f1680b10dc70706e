"""Trials in worker processes: parallel, unique, crash-tolerant, resumable (run as subprocesses)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, csv_rows, wait_for

from keras_regnet import trial_workers

FLAGS = ["--dataset", "digits", "--image-size", "32", "--batch-size", "64", "--flops", "0.3M:3M", "--depth", "1:2"]


def _descendants(pid):
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parents[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = set(), [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _trial_workers(pid):
    """The trial worker processes among `pid`'s descendants."""
    found = set()
    for child in _descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"keras_regnet.trial_workers" in f.read():
                    found.add(child)
        except OSError:
            pass
    return found


def test_workers_argument_is_checked():
    assert trial_workers.default_workers() >= 1
    for bad in (0, -1, 2.0, True, "2", 10_000):
        with pytest.raises(ValueError, match="--workers"):
            trial_workers.check_workers(bad)


def test_search_with_two_workers_runs_every_trial_once(tmp_path):
    out = tmp_path / "search"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.cli",
            "search",
            "--space",
            "AnyNetX_D",
            "--max-trials",
            "4",
            "--epochs",
            "1",
            "--workers",
            "2",
            "--out",
            str(out),
            *FLAGS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = csv_rows(out / "trials.csv")
    assert sorted(r["trial_id"] for r in rows) == ["0", "1", "2", "3"]
    assert all(r["status"] == "COMPLETED" for r in rows)
    networks = {tuple(r[f"width_{i}"] for i in range(1, 5)) + tuple(r[f"depth_{i}"] for i in range(1, 5)) for r in rows}
    assert len(networks) == 4  # no network trained twice
    assert all(0 < float(r["worker_peak_rss_mb"]) for r in rows)
    lines = [l for l in result.stdout.splitlines() if l.startswith("trial ")]
    assert len(lines) == 4 and "4/4 ended" in lines[-1] and "ETA" in lines[-1]


def test_a_killed_worker_costs_only_its_trial(tmp_path):
    out = tmp_path / "kill"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apps.cli",
            "search",
            "--space",
            "AnyNetX_A",
            "--max-trials",
            "4",
            "--epochs",
            "3",
            "--workers",
            "2",
            "--out",
            str(out),
            *FLAGS,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Kill a worker while a trial is running (the oracle has written a RUNNING trial).
        wait_for(lambda: list((out / "tuner").glob("trial_*/trial.json")), 300, "a running trial")
        victims = wait_for(lambda: _trial_workers(proc.pid), 60, "the worker processes")
        time.sleep(3)
        os.kill(max(victims), signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, output[-3000:]
    rows = csv_rows(out / "trials.csv")
    assert sorted(r["trial_id"] for r in rows) == ["0", "1", "2", "3"]
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    assert len(completed) >= 3  # the killed trial is retried once, or recorded as failed with the reason
    for row in rows:
        if row["status"] != "COMPLETED":
            assert "died" in row["message"]
    if "will be retried" in output:
        assert "died from SIGKILL" in output


@pytest.mark.slow
def test_a_killed_study_resumes_without_losing_or_rerunning_trials(tmp_path):
    out = tmp_path / "study"
    args = [
        sys.executable,
        "-m",
        "apps.cli",
        "study",
        "--quick",
        "--spaces",
        "AnyNetX_A,AnyNetX_B",
        "--samples",
        "3",
        "--epochs",
        "1",
        "--flops",
        "0.3M:3M",
        "--batch-size",
        "64",
        "--workers",
        "2",
        "--seed-check",
        "0",
        "--proxy-check",
        "0",
        "--confirm",
        "0",
        "--out",
        str(out),
    ]

    def completed():
        rows = []
        for space in ("AnyNetX_A", "AnyNetX_B"):
            path = out / space / "trials.csv"
            if path.exists():
                rows += [dict(r, space=space) for r in csv_rows(path) if r["status"] == "COMPLETED"]
        return rows

    first = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: len(completed()) >= 2, 600, "two completed trials")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    before = {(r["space"], r["trial_id"]): r for r in completed()}
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    after = {(r["space"], r["trial_id"]): r for r in completed()}
    assert len(after) == 6
    for key, row in before.items():
        assert after[key] == row  # kept, not retrained
    rerun = {
        (l.split("]")[0][1:], l.split()[2])
        for l in second.stdout.splitlines()
        if l.startswith("[AnyNetX") and " trial " in l
    }
    assert not rerun & set(before)
    assert (out / "report.md").exists()


def test_final_validation_default_chunk_bounds_pixels_per_call():
    """The default chunk is ~1M pixels a call: all 898 study images at 32x32 at once, 20 at 224x224."""
    import numpy as np
    import tensorflow as tf

    class Recorder:
        """A stand-in classifier: records each call's batch, predicts class 0."""

        def __init__(self):
            self.calls = []

        def __call__(self, x, training=False):
            self.calls.append(len(x))
            return np.tile(np.array([[0.9, 0.1]], np.float32), (len(x), 1))

        def loss(self, y, outputs):
            return np.float32(0.5)

    for side, expected in ((32, [898]), (224, [20] * 44 + [18])):
        images = np.zeros((898, side, side, 1), np.uint8)
        labels = np.arange(898) % 2
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(100)
        model = Recorder()
        loss, accuracy = trial_workers.final_validation(model, dataset)
        assert model.calls == expected
        assert loss == pytest.approx(0.5)
        assert accuracy == pytest.approx(449 / 898)


def test_final_validation_matches_keras_evaluate():
    """The study's eager one-pass validation gives Keras' evaluate numbers (chunks of any size)."""

    from keras_regnet import data, training
    from keras_regnet.models import AnyNet
    from keras_regnet.specs import AnyNetSpec

    ds = data.load("digits", image_size=32, batch_size=32, validation_fraction=0.35, seed=0)
    model = AnyNet(AnyNetSpec(16, [(1, 16, 8), (2, 32, 8)]), input_shape=ds.input_shape, classes=ds.num_classes)
    training.compile_model(model, training.TrainConfig(epochs=1, batch_size=32), ds.steps_per_epoch)
    model.fit(ds.train.take(3), epochs=1, verbose=0, shuffle=False)  # moving statistics away from their initial values
    expected = model.evaluate(ds.validation, verbose=0, return_dict=True)
    # 100: more chunks than TRACED_FROM_CHUNKS, traced, the last one padded; 300: three eager chunks;
    # the default: one eager chunk of the whole split
    for chunk in ({"chunk": 100}, {"chunk": 300}, {}):
        loss, accuracy = trial_workers.final_validation(model, ds.validation, **chunk)
        assert accuracy == pytest.approx(expected["accuracy"], abs=1e-6)
        assert loss == pytest.approx(expected["loss"], rel=1e-4)


def test_final_validation_traces_a_large_split_once():
    """More chunks than TRACED_FROM_CHUNKS: one trace for every chunk (the short last one padded);
    at most that many: one eager call a chunk. Same numbers either way."""
    import keras
    import numpy as np
    import tensorflow as tf

    class Counting(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)
            self.python_calls = 0

        def call(self, x, training=False):
            self.python_calls += 1
            return self.dense(keras.ops.reshape(x, (-1, 16)))

    rng = np.random.default_rng(0)
    images = rng.random((1030, 4, 4, 1)).astype("float32")
    labels = rng.integers(0, 3, 1030)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    model = Counting()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy())
    model(images[:1])
    results = []
    for chunk, expected_calls in ((100, 1), (300, 4)):  # 11 chunks: traced; 4 chunks: eager
        model.python_calls = 0
        results.append(trial_workers.final_validation(model, dataset, chunk=chunk))
        assert model.python_calls == expected_calls
    outputs = model(images)
    expected_loss = float(keras.losses.sparse_categorical_crossentropy(labels, outputs).numpy().mean())
    expected_accuracy = float(np.mean(np.argmax(outputs, -1) == labels))
    for loss, accuracy in results:
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        assert accuracy == pytest.approx(expected_accuracy)
