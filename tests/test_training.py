"""The training recipe: config checks, optimizer/schedule, loss, and real runs of `keras-regnet train`.

End-to-end tests run the command in subprocesses with tiny settings (digits at
16x16, batch 64, 1-3 epochs): a normal run, bad input, a run killed mid-way
and resumed, and a two-worker MultiWorkerMirroredStrategy run on 127.0.0.1.
"""

import csv
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from keras_regnet.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--image-size", "16", "--batch-size", "64")


@pytest.fixture
def tiny_spec(tmp_path):
    """A two-block AnyNet: traces and trains in a fraction of RegNetX32's time (for the
    tests of the machinery: resume, multi-worker)."""
    from keras_regnet.specs import AnyNetSpec

    path = tmp_path / "tiny.json"
    path.write_text(AnyNetSpec(8, [(1, 16, 8), (1, 32, 8)]).to_json())
    return str(path)


def read_history(out):
    with open(os.path.join(out, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def load_model(path):
    import keras

    import keras_regnet.layers  # noqa: F401  (registers GroupedConv2D for loading)

    return keras.saving.load_model(path)


# --------------------------------------------------------------------------- config


def test_config_defaults():
    config = TrainConfig()
    assert (config.model, config.dataset, config.batch_size) == ("RegNetX32", "digits", 128)
    assert (config.momentum, config.weight_decay, config.label_smoothing) == (0.9, 5e-5, 0.0)
    assert (config.schedule, config.mixed_precision, config.strategy) == ("cosine", "off", "auto")
    assert config.out == os.path.join("runs", "RegNetX32-digits")
    assert TrainConfig(model="specs/my_net.json", dataset="/data/flowers/").out == os.path.join(
        "runs", "my_net-flowers"
    )
    assert TrainConfig(out="x").out == "x"
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", ""),
        ("model", 3),
        ("dataset", None),
        ("data_dir", ""),
        ("image_size", 7),
        ("image_size", 16.0),
        ("epochs", 0),
        ("epochs", True),
        ("batch_size", 0),
        ("lr", 0),
        ("lr", -0.1),
        ("lr", float("nan")),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-5),
        ("warmup_epochs", -1),
        ("schedule", "step"),
        ("label_smoothing", 1.0),
        ("label_smoothing", -0.1),
        ("augment", "yes"),
        ("mixed_precision", "fp8"),
        ("strategy", "tpu"),
        ("seed", -1),
        ("out", ""),
        ("verbose", 3),
    ],
)
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field} must"):
        TrainConfig(**{field: value})


# --------------------------------------------------------------------------- optimizer


def _lr_at(optimizer, step):
    schedule = optimizer._learning_rate
    return float(schedule(step)) if callable(schedule) else float(schedule)


def test_optimizer_is_sgd_with_warmup_and_cosine_decay():
    import keras

    from keras_regnet.training import make_optimizer

    config = TrainConfig(epochs=10, lr=0.2, warmup_epochs=2, weight_decay=5e-5, momentum=0.9)
    optimizer = make_optimizer(config, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.9 and optimizer.weight_decay == 5e-5
    lrs = [_lr_at(optimizer, s) for s in (0, 10, 20, 60, 100)]
    assert lrs[0] == pytest.approx(0.0, abs=1e-7)  # linear warm-up from 0
    assert lrs[1] == pytest.approx(0.1, rel=1e-5)  # half-way through warm-up
    assert lrs[2] == pytest.approx(0.2, rel=1e-5)  # peak
    assert lrs[3] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 40 / 80)), rel=1e-4)
    assert lrs[4] == pytest.approx(0.0, abs=1e-6)  # decayed to 0
    # The schedule serializes with the optimizer (it is saved in model.keras).
    restored = keras.optimizers.SGD.from_config(optimizer.get_config())
    assert _lr_at(restored, 60) == pytest.approx(lrs[3], rel=1e-5)


def test_constant_schedule_and_warmup_cap():
    from keras_regnet.training import make_optimizer, warmup_steps

    # d2l's plain recipe: a constant 0.05, no warm-up.
    d2l = make_optimizer(TrainConfig(schedule="constant", lr=0.05, warmup_epochs=0), 7)
    assert [_lr_at(d2l, s) for s in (0, 50, 139)] == pytest.approx([0.05] * 3)
    # Constant after a warm-up.
    warm = make_optimizer(TrainConfig(schedule="constant", lr=0.05, warmup_epochs=1, epochs=4), 10)
    assert [_lr_at(warm, s) for s in (5, 10, 39)] == pytest.approx([0.025, 0.05, 0.05], rel=1e-5)
    # Warm-up never takes more than half of the run (epochs=1 with the default warm-up).
    assert warmup_steps(TrainConfig(epochs=1, warmup_epochs=1), 10) == 5
    assert warmup_steps(TrainConfig(epochs=20, warmup_epochs=1.5), 10) == 15
    assert make_optimizer(TrainConfig(weight_decay=0), 10).weight_decay is None


def test_our_sgd_updates_exactly_as_keras_sgd_and_is_built_before_fit():
    """keras_regnet.optimizers.SGD only changes how often the schedule is traced, not the update."""
    import keras

    from keras_regnet.optimizers import SGD
    from keras_regnet.training import compile_model, make_learning_rate

    config = TrainConfig(epochs=2, lr=0.1, weight_decay=1e-2, warmup_epochs=1)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (32, 16, 16, 1)).astype("float32"), rng.integers(0, 10, 32)
    weights = []
    for cls in (keras.optimizers.SGD, SGD):
        keras.utils.set_random_seed(0)
        model = _tiny_model()
        initial = model.get_weights()
        model.compile(
            optimizer=cls(learning_rate=make_learning_rate(config, 4), momentum=0.9, weight_decay=1e-2),
            loss="sparse_categorical_crossentropy",
        )
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    assert not all(np.array_equal(a, b) for a, b in zip(weights[1], initial))  # it did train
    model = compile_model(_tiny_model(), config, 4)
    assert isinstance(model.optimizer, SGD) and model.optimizer.built  # no second trace in fit
    restored = SGD.from_config(model.optimizer.get_config())
    assert _lr_at(restored, 6) == pytest.approx(_lr_at(model.optimizer, 6))


# --------------------------------------------------------------------------- loss


def _tiny_model(activation="softmax", input_shape=(16, 16, 1)):
    from keras_regnet.models import build_model

    return build_model("RegNetX32", input_shape=input_shape, classes=10, classifier_activation=activation)


def test_from_logits_follows_classifier_activation():
    import keras

    from keras_regnet.training import compile_model

    config = TrainConfig(epochs=1)
    soft = compile_model(_tiny_model("softmax"), config, 5)
    logits = compile_model(_tiny_model(None), config, 5)
    assert isinstance(soft.loss, keras.losses.SparseCategoricalCrossentropy)
    assert soft.loss.get_config()["from_logits"] is False
    assert logits.loss.get_config()["from_logits"] is True
    with pytest.raises(ValueError, match="classifier_activation='softmax' or None"):
        compile_model(_tiny_model("sigmoid"), config, 5)


def test_label_smoothing_loss_matches_the_formula_and_round_trips():
    import keras

    from keras_regnet.training import SparseCategoricalCrossentropyWithSmoothing, compile_model

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 10)).astype("float32")
    labels = np.array([0, 3, 9, 1, 1, 5])
    eps = 0.1
    targets = np.full((6, 10), eps / 10)
    targets[np.arange(6), labels] += 1 - eps
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(targets * log_probs).sum(-1).mean()

    loss = SparseCategoricalCrossentropyWithSmoothing(from_logits=True, label_smoothing=eps)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    probs = keras.ops.softmax(logits)
    as_probs = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=eps)
    assert float(as_probs(labels[:, None], probs)) == pytest.approx(expected, rel=1e-4)
    # With 0 it equals Keras's sparse cross-entropy.
    plain = SparseCategoricalCrossentropyWithSmoothing(from_logits=True)
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(plain(labels, logits)) == pytest.approx(float(reference(labels, logits)), rel=1e-5)

    model = compile_model(_tiny_model(None), TrainConfig(epochs=1, label_smoothing=eps), 5)
    assert isinstance(model.loss, SparseCategoricalCrossentropyWithSmoothing)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model.loss))
    assert restored.get_config()["label_smoothing"] == eps and restored.from_logits is True


def test_mixed_precision_classifier_is_float32():
    import keras

    from keras_regnet.training import compile_model, float32_classifier

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = float32_classifier(_tiny_model())
        compile_model(model, TrainConfig(epochs=1), 2)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert model.layers[1].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"
    assert model.outputs[0].dtype == "float32"
    assert model.loss.get_config()["from_logits"] is False
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    probs = model(x)
    assert probs.dtype == "float32"
    np.testing.assert_allclose(np.sum(probs, -1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------- end to end


def test_train_command_end_to_end_bf16(tmp_path):
    """One tiny bf16 epoch through the command; every output checked."""
    out = tmp_path / "run"
    result = run_cli("train", *TINY, "--epochs", "1", "--mixed-precision", "bf16", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stdout.splitlines()[-1].startswith("test accuracy: ")

    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "RegNetX32" and summary["dataset"] == "digits"
    assert summary["epochs"] == 1 and summary["input_shape"] == [16, 16, 1]
    assert set(summary["complexity"]) == {"flops", "params", "acts"}
    from keras_regnet import complexity, zoo

    assert summary["complexity"] == complexity.count(zoo.get_spec("RegNetX32"), (16, 16, 1), 10).to_dict()
    assert 0 <= summary["accuracy"]["test"] <= 1 and 0 <= summary["accuracy"]["best_validation"] <= 1
    assert f"{summary['accuracy']['test']:.4f}" in result.stdout
    assert summary["wall_time_s"] > 0 and summary["images_per_second"] > 0
    assert summary["config"]["mixed_precision"] == "bf16" and summary["config"]["epochs"] == 1
    assert summary["steps"] == summary["num_examples"]["train"] // 64  # full batches only

    rows = read_history(out)
    assert [int(r["epoch"]) for r in rows] == [0]
    assert {"accuracy", "loss", "val_accuracy", "val_loss"} <= set(rows[0])
    assert summary["accuracy"]["best_validation"] == max(float(r["val_accuracy"]) for r in rows)
    assert (out / "best.keras").is_file() and (out / "run.json").is_file()
    assert any((out / "logs").rglob("events.out.tfevents.*"))
    assert not (out / "backup").exists()  # deleted once training finished

    model = load_model(str(out / "model.keras"))
    assert model.layers[-1].compute_dtype == "float32"
    assert model.layers[2].compute_dtype == "bfloat16"
    assert tuple(model.input_shape) == (None, 16, 16, 1) and tuple(model.output_shape) == (None, 10)
    import keras_regnet.data as data

    images, labels = next(iter(data.load("digits", image_size=16, batch_size=512).test))
    accuracy = float(np.mean(np.argmax(model.predict(images, verbose=0), -1) == labels.numpy()))
    # The first 512 test examples are all of digits' 270-example test split.
    assert accuracy == pytest.approx(summary["accuracy"]["test"], abs=0.02)


def _assert_one_error_line(result, *fragments):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    # TensorFlow's own C++ log lines ("E0000 ... CUDA error: ...") are not ours.
    lines = [line for line in result.stderr.splitlines() if "error:" in line and not re.match(r"[EWIF]\d{4} ", line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keras-regnet train: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_input_is_one_error_line(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"model": "RegNetX002", "dataset": "digits"}))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--model", "ResNet50"], ["unknown model", "ResNet50"]),
        (["--model", str(tmp_path / "missing.json")], ["missing.json"]),
        (["--dataset", "no_such_dataset_xyz"], ["Unknown dataset"]),
        (["--dataset", str(empty)], [str(empty)]),
        (["--model", "RegNetX002", "--image-size", "16"], ["--image-size 16 is below 32"]),
        (["--out", str(other)], ["RegNetX002", str(other)]),
        (["--epochs", "0"], ["epochs"]),
    ]
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        cases.append((["--mixed-precision", "fp16"], ["fp16 needs a GPU"]))
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apps.cli",
                "train",
                *TINY,
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / f"out{i}"),
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, (args, _) in enumerate(cases)
    ]
    try:
        for process, (args, fragments) in zip(processes, cases):
            stdout, stderr = process.communicate(timeout=120)
            _assert_one_error_line(subprocess.CompletedProcess(args, process.returncode, stdout, stderr), *fragments)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert not (other / "history.csv").exists()  # the other run's folder was left alone


def test_killed_run_resumes_where_it_stopped(tmp_path, tiny_spec):
    """SIGKILL after the first epoch, re-run with the same folder: it continues at epoch 2."""
    out = tmp_path / "run"
    epochs = 4
    args = [
        sys.executable,
        "-m",
        "apps.cli",
        "train",
        "--model",
        tiny_spec,
        "--image-size",
        "16",
        "--batch-size",
        "16",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
    ]
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    history = out / "history.csv"
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and first.poll() is None:
            if (out / "backup" / "state.json").exists():  # an epoch is backed up
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before it could be killed"
        assert history.exists(), "no epoch completed within the time limit"
        first.send_signal(signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
        log.close()
    assert first.returncode == -signal.SIGKILL
    done = json.loads((out / "backup" / "state.json").read_text())["epoch"]  # backed-up epochs
    assert 1 <= done < epochs and len(read_history(out)) >= done
    assert not (out / "model.keras").exists()

    second = run_cli(*args[3:], timeout=240)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    printed = [int(n) for n in re.findall(rf"Epoch (\d+)/{epochs}", second.stdout)]
    assert printed[0] == done + 1 >= 2  # resumed: no completed epoch redone
    assert printed == list(range(done + 1, epochs + 1))
    assert f"{done} of {epochs} epochs done" in second.stdout
    rows = read_history(out)
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))  # 0..E-1, no duplicates
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == done
    steps_per_epoch = summary["num_examples"]["train"] // 16  # full batches only
    assert summary["steps_this_run"] == (epochs - done) * steps_per_epoch
    assert summary["steps"] == epochs * steps_per_epoch  # the whole run, the killed part included
    assert summary["wall_time_s"] > summary["wall_time_this_run_s"] > 0
    assert not (out / "backup").exists()


@pytest.mark.parametrize("damage", ["weights", "state"])
def test_a_backup_damaged_mid_write_never_crashes_a_rerun(tmp_path, tiny_spec, damage):
    """A kill while a backup is written: the rerun resumes from the last good epoch or starts over."""
    out = tmp_path / "run"
    args = ("train", "--model", tiny_spec, *TINY, "--epochs", "2", "--out", str(out))
    backup = out / "backup"
    backup.mkdir(parents=True)
    (backup / "epoch-1.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # cut short
    (backup / "tmp-999.weights.h5").write_bytes(b"partial")  # a write that never finished
    if damage == "weights":
        (backup / "state.json").write_text(json.dumps({"epoch": 1, "weights": "epoch-1.weights.h5"}))
    else:
        (backup / "state.json").write_text('{"epoch": 1, "weigh')
    result = run_cli(*args, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "starting over" in result.stdout and "Traceback" not in result.stderr
    # stdout is a pipe, not a terminal: one line per epoch, no progress-bar redraws or escape codes
    assert "Epoch 2/2" in result.stdout and "\r" not in result.stdout and "\x1b" not in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 0 and summary["epochs"] == 2
    assert [int(r["epoch"]) for r in read_history(out)] == [0, 1]
    assert not backup.exists()


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_two_workers_train_the_same_model(tmp_path, tiny_spec):
    out = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes, logs = [], []
    try:
        for index in range(2):
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            }
            logs.append(open(tmp_path / f"worker{index}.log", "w+"))
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "apps.cli",
                        "train",
                        "--model",
                        tiny_spec,
                        *TINY,
                        "--epochs",
                        "1",
                        "--no-augment",
                        "--strategy",
                        "multiworker",
                        "--out",
                        str(out),
                        "--quiet",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 150
        for process in processes:
            process.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        texts = []
        for log in logs:
            log.seek(0)
            texts.append(log.read())
            log.close()
    for process, text in zip(processes, texts):
        assert process.returncode == 0, text[-4000:]

    chief, worker = out, out / "worker-1"  # only the chief writes into --out
    summaries = [json.loads((d / "summary.json").read_text()) for d in (chief, worker)]
    steps = summaries[0]["num_examples"]["train"] // 64  # full batches only
    for summary, (task_id, is_chief) in zip(summaries, [(0, True), (1, False)]):
        assert summary["task"] == {"type": "worker", "id": task_id, "chief": is_chief}
        assert summary["replicas"] == 2
        assert summary["steps"] == steps  # both workers stepped through the epoch
    for d in (chief, worker):
        assert [int(r["epoch"]) for r in read_history(d)] == [0]
    assert not (chief / "worker-0").exists()
    assert summaries[0]["accuracy"] == summaries[1]["accuracy"]

    a, b = (load_model(str(d / "model.keras")) for d in (chief, worker))
    weights_a, weights_b = a.get_weights(), b.get_weights()
    assert len(weights_a) == len(weights_b)
    for wa, wb in zip(weights_a, weights_b):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    # Training changed the weights (the comparison is not of two untouched initializations).
    from keras_regnet.models import build_model

    fresh = build_model(tiny_spec, input_shape=(16, 16, 1), classes=10)
    assert any(not np.allclose(w, f) for w, f in zip(weights_a, fresh.get_weights()))


def test_run_files_are_replaced_atomically(tmp_path, monkeypatch):
    """A write that dies half-way leaves the previous file intact (no half-written model or record)."""
    import keras

    from keras_regnet import run_folder
    from keras_regnet.training import save_model_atomically

    model = _tiny_model()
    path = tmp_path / "model.keras"
    save_model_atomically(model, str(path))
    before = path.read_bytes()

    def dies_half_way(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(keras.Model, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_model_atomically(model, str(path))
    assert path.read_bytes() == before
    run_folder.write_text(str(tmp_path / "report.md"), "old")
    monkeypatch.setattr(run_folder.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run_folder.write_text(str(tmp_path / "report.md"), "new")
    assert (tmp_path / "report.md").read_text() == "old"


@pytest.mark.slow  # ~30 s on 2 cores: two runs of the command (tests/test_data.py covers the loader fast)
def test_corrupt_image_in_a_folder_is_skipped_and_named_or_refused(tmp_path, tiny_spec):
    import tensorflow as tf

    root = tmp_path / "shapes"
    for label, value in (("dark", 30), ("light", 220)):
        (root / label).mkdir(parents=True)
        for i in range(6):
            image = np.full((16, 16, 3), value + i, np.uint8)
            tf.io.write_file(str(root / label / f"{i}.png"), tf.io.encode_png(image))
    (root / "light" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(50))  # a JPEG header, then nothing
    out = tmp_path / "run"
    args = ("train", "--model", tiny_spec, "--dataset", str(root), "--image-size", "16", "--epochs", "1", "--quiet")
    strict = run_cli(*args, "--out", str(tmp_path / "strict"), "--strict-images")
    _assert_one_error_line(strict, "broken.jpg", "1 of 13 image files")
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "broken.jpg" in warnings[0] and "1 of 13" in warnings[0], result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_images"] == 1 and sum(summary["num_examples"].values()) == 12


def test_finished_run_is_not_retrained_and_a_batch_over_the_train_set_warns(tmp_path, tiny_spec, capsys):
    from keras_regnet import training

    out = tmp_path / "run"
    settings = dict(model=tiny_spec, image_size=16, epochs=1, batch_size=5000, augment=False, out=str(out), verbose=0)
    first = training.train(TrainConfig(**settings))
    printed = capsys.readouterr().out
    assert "the batch size 5000 (--batch-size) exceeds the 1349 training images" in printed, printed
    stamp = (out / "model.keras").stat().st_mtime_ns

    again = training.train(TrainConfig(**settings))
    printed = capsys.readouterr().out
    assert "complete" in printed and "--overwrite" in printed, printed
    assert again == first and (out / "model.keras").stat().st_mtime_ns == stamp  # nothing retrained

    with pytest.raises(ValueError, match=r"other settings \(--epochs 1 -> 2\).*--overwrite"):
        training.train(TrainConfig(**{**settings, "epochs": 2}))
    redone = training.train(TrainConfig(**{**settings, "epochs": 2, "overwrite": True}))
    assert redone["epochs"] == 2 and [int(r["epoch"]) for r in read_history(out)] == [0, 1]


def test_d2l_init_draws_xavier_kernels_and_keeps_every_gamma_at_one():
    """--init d2l: d2l's init_cnn (Xavier-uniform kernels), no zero-initialised residual branch."""
    import keras

    import keras_regnet
    from keras_regnet.training import TrainConfig, xavier_kernels

    keras.utils.set_random_seed(0)
    model = keras_regnet.RegNetX32(zero_init_last=False)
    xavier_kernels(model)
    conv = model.get_layer("regnetx32_stage2_block1_conv_1x1_1").kernel.numpy()  # 80 -> 80, 1x1
    limit = np.sqrt(6 / (80 + 80))
    assert np.abs(conv).max() <= limit and np.abs(conv).max() > 0.9 * limit  # uniform on [-limit, limit]
    gammas = [layer.gamma.numpy() for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(np.all(g == 1) for g in gammas)
    with pytest.raises(ValueError, match="TrainConfig.init"):
        TrainConfig(init="xavier")
