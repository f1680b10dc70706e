"""`keras-regnet train --backend jax|torch` end to end, and the TensorFlow-only parts' errors elsewhere."""

import importlib.util
import json

import numpy as np
import pytest
from helpers import run_cli


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_on_another_backend_and_load_under_tensorflow(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} not installed (pip install 'keras-regnet[{backend}]')")
    out = tmp_path / backend
    result = run_cli("train", "--backend", backend, "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == backend and summary["epochs"] == 1
    import keras

    import keras_regnet  # noqa: F401

    model = keras.saving.load_model(out / "model.keras")  # saved under `backend`, loaded under TensorFlow
    scores = model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    assert scores.shape == (2, 10) and np.all(np.isfinite(scores))


def test_tensorflow_only_parts_refuse_other_backends_in_one_line(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read: the backend is checked first")
    cases = [
        (["export", "--model", str(model), "--out", str(tmp_path / "exp")], "KERAS_BACKEND=tensorflow"),
        (["train", "--strategy", "mirrored", "--epochs", "1", "--out", str(tmp_path / "t")], "tf.distribute"),
    ]
    for args, message in cases:
        result = run_cli(*args, env={"KERAS_BACKEND": "jax"}, timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr, result.stderr


def test_backend_selection_in_a_process_that_runs_tensorflow():
    import keras

    from keras_regnet import backends

    with pytest.raises(ValueError, match="--backend must be one of tensorflow, jax, torch"):
        backends.select("theano")
    assert keras.backend.backend() == "tensorflow" and backends.select("tensorflow") == "tensorflow"
    backends.require_tensorflow("SavedModel export")  # no error here
    for other in ("jax", "torch"):
        if importlib.util.find_spec(other) is not None:  # Keras cannot switch once loaded
            with pytest.raises(ValueError, match="already running on tensorflow"):
                backends.select(other)
