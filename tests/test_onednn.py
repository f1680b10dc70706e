"""oneDNN on or off, chosen before TensorFlow loads, and grouped convolutions that train either way."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import ROOT

TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras_regnet, keras
    from keras_regnet import layers, startup
    policy, out = sys.argv[1], sys.argv[2]
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (48, 32, 32, 1)).astype("float32"), np.arange(48) % 10
    losses = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.savez(out, *[w.numpy() if hasattr(w, "numpy") else np.asarray(w) for w in model.weights])
    compute = keras.mixed_precision.global_policy().compute_dtype
    print(json.dumps({"state": startup.onednn_state(), "parts": sorted(layers._native_grouped_parts(compute)),
                      "loss": losses}))
""")


def _train(tmp_path, onednn, policy):
    out = tmp_path / f"{onednn}-{policy}.npz"
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERAS_REGNET_ONEDNN_JOB", None)  # a user's shell: not a child of a process that imported us
    result = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, policy, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    with np.load(out) as weights:
        return report, [weights[k] for k in sorted(weights.files, key=lambda k: int(k.split("_")[1]))]


def _difference(a, b):
    """All weights as one vector: the norm of the difference over the norm of the weights. (A single
    small weight, e.g. a batch-norm shift after 3 steps, can differ by a large share through rounding.)"""
    a, b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b])
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_regnetx32_trains_with_onednn_on_and_off_in_float32_and_bfloat16(tmp_path):
    """Three RegNetX32 steps in a fresh process per setting: all finish, and land on the same weights
    (float32 within float rounding; bfloat16 within its 8-bit mantissa)."""
    runs = {(o, p): _train(tmp_path, o, p) for o in ("0", "1") for p in ("float32", "mixed_bfloat16")}
    for (onednn, _), (report, _) in runs.items():
        assert report["state"]["enabled"] is (onednn == "1")
        assert report["state"]["chosen_by"] == "the user"
        assert all(np.isfinite(report["loss"]))
    assert runs[("0", "float32")][0]["parts"] == []  # Eigen has no grouped gradients: the package's forms
    differences = {
        "float32, oneDNN on vs off": _difference(runs[("0", "float32")][1], runs[("1", "float32")][1]),
        "bfloat16, oneDNN on vs off": _difference(runs[("0", "mixed_bfloat16")][1], runs[("1", "mixed_bfloat16")][1]),
        "oneDNN on, float32 vs bfloat16": _difference(runs[("1", "float32")][1], runs[("1", "mixed_bfloat16")][1]),
    }
    print(differences)
    assert differences["float32, oneDNN on vs off"] < 1e-5, differences
    assert differences["bfloat16, oneDNN on vs off"] < 1e-2, differences
    assert differences["oneDNN on, float32 vs bfloat16"] < 1e-2, differences


def _startup_report(env_changes, code):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "KERAS_REGNET_ONEDNN_JOB")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_import_keras_regnet_chooses_onednn_and_keeps_tensorflow_quiet():
    code = (
        "import os, json, keras_regnet, tensorflow\n"
        "from keras_regnet import startup\n"
        "print(json.dumps([os.environ.get('TF_ENABLE_ONEDNN_OPTS'), startup.onednn_state()]))"
    )
    result = _startup_report({}, code)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no absl banner, no "Could not find cuda drivers", no oneDNN line
    value, state = json.loads(result.stdout)
    if os.uname().machine in ("x86_64", "AMD64"):
        assert value == "1" and state["enabled"] is True
        assert state["chosen_by"] == "keras_regnet (script job)"


@pytest.mark.parametrize("value, enabled", [("0", False), ("1", True)])
def test_the_users_onednn_setting_always_wins(value, enabled):
    code = (
        "import json, keras_regnet, tensorflow\n"
        "from keras_regnet import startup\n"
        "startup.choose_onednn('train')\n"
        "print(json.dumps(startup.onednn_state()))"
    )
    result = _startup_report({"TF_ENABLE_ONEDNN_OPTS": value}, code)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["enabled"] is enabled and state["chosen_by"] == "the user"


def test_tensorflow_imported_first_is_left_as_it_loaded():
    """Once TensorFlow is loaded nothing can change oneDNN: the package does not pretend to."""
    code = (
        "import os, json, tensorflow, keras_regnet\n"
        "from keras_regnet import startup\n"
        "print(json.dumps([os.environ.get('TF_ENABLE_ONEDNN_OPTS'), startup.onednn_state()['chosen_by']]))"
    )
    result = _startup_report({"TF_CPP_MIN_LOG_LEVEL": "3"}, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [None, "tensorflow's default for this CPU"]


def test_trial_jobs_keep_tensorflows_default_even_under_a_script():
    """A script's choice ("1") is not inherited by trial workers: they run TensorFlow's default (measured)."""
    code = (
        "import os, keras_regnet\n"
        "from keras_regnet import startup\n"
        "before = os.environ.get('TF_ENABLE_ONEDNN_OPTS')\n"
        "startup.choose_onednn('trial')\n"
        "print(before, os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('KERAS_REGNET_ONEDNN_JOB'))"
    )
    result = _startup_report({}, code)
    assert result.returncode == 0, result.stderr
    if os.uname().machine == "x86_64":
        assert result.stdout.split() == ["1", "None", "None"]


def test_a_value_the_user_changed_after_the_package_chose_is_the_users():
    """A child process inherits the package's marker; a different value beside it is the user's own."""
    code = "import json, keras_regnet, tensorflow\nfrom keras_regnet import startup\n"
    code += "print(json.dumps(startup.onednn_state()))"
    inherited = {"KERAS_REGNET_ONEDNN_JOB": "script=1"}
    result = _startup_report({**inherited, "TF_ENABLE_ONEDNN_OPTS": "0"}, code)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["enabled"] is False and state["chosen_by"] == "the user"


def test_unknown_job_is_refused():
    from keras_regnet import startup

    with pytest.raises(ValueError, match="job must be one of"):
        startup.choose_onednn("training")
