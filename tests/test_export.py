"""SavedModel export: layout, signature, fresh-process verification, CLI."""

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_regnet import export as kexport  # noqa: E402


def small_model(activation="softmax"):
    """RegNetX32 at 32x32x1 when the package has it, else a tiny grouped CNN."""
    if activation == "softmax":
        try:
            import keras_regnet

            return keras_regnet.RegNetX32(input_shape=(32, 32, 1), classes=10)
        except (ImportError, AttributeError):
            pass
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", groups=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation=activation)(x)
    return keras.Model(inputs, outputs)


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("export") / "regnet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XLA note for the fallback CNN
        version_dir = kexport.export_saved_model(model, base)  # verify=True
    return base, version_dir


def test_layout_is_tf_serving_style(exported):
    base, version_dir = exported
    assert Path(version_dir) == base / "1"
    assert (base / "1" / "saved_model.pb").is_file()
    assert (base / "1" / "variables").is_dir()


def test_signature_names_dtypes_and_dynamic_batch(exported, model):
    _, version_dir = exported
    fn = tf.saved_model.load(version_dir).signatures["serving_default"]
    spec = fn.structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 32, 32, 1]
    x = images(3, seed=1)
    out = fn(images=tf.constant(x))
    assert set(out) == {"probabilities", "classes"}
    assert out["classes"].dtype == tf.int64
    want = keras.ops.convert_to_numpy(model(x.astype("float32")))
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    np.testing.assert_array_equal(out["classes"].numpy(), want.argmax(-1))


def test_saved_model_cli_lists_signature(exported):
    cli = Path(sys.executable).parent / "saved_model_cli"
    if not cli.exists():
        pytest.skip("saved_model_cli not installed next to python")
    done = subprocess.run(
        [str(cli), "show", "--dir", exported[1], "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for text in (
        "signature_def['serving_default']",
        "images",
        "DT_UINT8",
        "probabilities",
        "classes",
        "(-1, 32, 32, 1)",
    ):
        assert text in done.stdout


@pytest.fixture(scope="module")
def logit_export(tmp_path_factory):
    """A tiny logits model exported with float32 input (verified on export)."""
    logit_model = small_model(activation=None)  # has keras Conv2D(groups=2)
    with pytest.warns(UserWarning, match="xla_cpu_compilation_enabled"):
        version_dir = kexport.export_saved_model(
            logit_model, tmp_path_factory.mktemp("logits"), version=3, input_dtype="float32"
        )
    return logit_model, version_dir


def test_logits_model_gets_softmax_and_float32_input(logit_export):
    logit_model, version_dir = logit_export
    assert kexport.outputs_are_logits(logit_model) is True
    assert version_dir.endswith(os.sep + "3")
    fn = tf.saved_model.load(version_dir).signatures["serving_default"]
    assert fn.structured_input_signature[1]["images"].dtype == tf.float32
    probabilities = fn(images=tf.constant(images(2).astype("float32")))["probabilities"]
    np.testing.assert_allclose(probabilities.numpy().sum(-1), 1.0, atol=1e-5)


def test_verify_detects_a_different_model(logit_export):
    logit_model, version_dir = logit_export
    other = keras.models.clone_model(logit_model)  # fresh random weights
    with pytest.raises(ValueError, match="differs from the Keras model"):
        kexport.verify_export(version_dir, other)


def test_xla_functions_come_only_from_keras_grouped_convs(logit_export, model, exported):
    # Keras 3 jit-compiles Conv2D(groups>1); GroupedConv2D must not need XLA.
    assert kexport.must_compile_functions(logit_export[1])
    keras_grouped = any(
        type(layer) is keras.layers.Conv2D and layer.groups > 1 for layer in model._flatten_layers(include_self=False)
    )
    assert bool(kexport.must_compile_functions(exported[1])) == keras_grouped


def test_outputs_are_logits_detection(model):
    assert kexport.outputs_are_logits(model) is False
    inputs = keras.Input((4, 4, 1))
    flat = keras.layers.Flatten()(inputs)
    soft = keras.layers.Softmax()(keras.layers.Dense(3)(flat))
    assert kexport.outputs_are_logits(keras.Model(inputs, soft)) is False
    custom = keras.layers.Lambda(lambda t: t)(keras.layers.Dense(3)(flat))
    custom_model = keras.Model(inputs, custom)
    assert kexport.outputs_are_logits(custom_model) is None
    with pytest.raises(ValueError, match="logits=True or logits=False"):
        kexport.export_saved_model(custom_model, "/nonexistent-unused", verify=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"version": 0}, ValueError, "version must be an int >= 1"),
        ({"version": "1"}, TypeError, "version"),
        ({"version": True}, TypeError, "version"),
        ({"input_dtype": "int8"}, ValueError, "input_dtype must be one of"),
        ({"logits": "yes"}, TypeError, "logits"),
        ({"verify": 1}, TypeError, "verify must be a bool"),
    ],
)
def test_export_rejects_bad_arguments(model, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        kexport.export_saved_model(model, tmp_path, **kwargs)
    assert not (tmp_path / "1").exists()


def test_export_refuses_to_overwrite_and_bad_models(model, exported, tmp_path):
    with pytest.raises(ValueError, match=r"already holds version 1.*\(--overwrite, overwrite=True\)"):
        kexport.export_saved_model(model, exported[0], verify=False)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="path must be a directory"):
        kexport.export_saved_model(model, a_file)
    with pytest.raises(TypeError, match="model must be a keras.Model"):
        kexport.export_saved_model("model.keras", tmp_path)
    inputs = keras.Input((8,))
    with pytest.raises(ValueError, match=r"\[batch, H, W, C\]"):
        kexport.export_saved_model(keras.Model(inputs, keras.layers.Dense(2)(inputs)), tmp_path)
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        kexport.verify_export(tmp_path, model)


def test_cli_export_roundtrip_and_errors(model, tmp_path, capsys):
    from apps import cli

    model_file = tmp_path / "m.keras"
    model.save(model_file)
    out = tmp_path / "served"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = cli.main(["export", "--model", str(model_file), "--out", str(out), "--version", "2", "--no-verify"])
    assert rc == 0
    assert (out / "2" / "saved_model.pb").is_file()

    capsys.readouterr()
    assert cli.main(["export", "--model", str(tmp_path / "missing.keras"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip")
    assert cli.main(["export", "--model", str(garbage), "--out", str(out)]) == 2
    assert "is not a Keras zip archive" in capsys.readouterr().err  # garbage bytes: not the zip .keras is
    assert cli.main(["export", "--model", str(model_file), "--out", str(out), "--version", "2", "--no-verify"]) == 2
    assert "already holds version 2" in capsys.readouterr().err
    shutil.rmtree(out)


def test_export_with_folded_batch_norm(tmp_path):
    import keras_regnet

    model = keras_regnet.RegNetY002(weights=None, input_shape=(32, 32, 3), classes=5)
    version_dir = kexport.export_saved_model(model, tmp_path / "folded", fold_batch_norm=True)
    loaded = tf.saved_model.load(version_dir)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    out = loaded.signatures["serving_default"](images=tf.constant(x))
    np.testing.assert_allclose(out["probabilities"].numpy(), model(x.astype("float32")).numpy(), atol=1e-4)
    with pytest.raises(TypeError, match="fold_batch_norm"):
        kexport.export_saved_model(model, tmp_path / "bad", fold_batch_norm="yes")


def test_export_folds_batch_norm_by_default_where_it_can(tmp_path):
    """The faster path measured (bench/inference_paths.py) without a manual step; False serves it as is."""
    import keras_regnet

    model = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
    graphs = {}
    for name, fold in (("default", None), ("as-is", False)):
        version_dir = kexport.export_saved_model(model, tmp_path / name, fold_batch_norm=fold, verify=False)
        graphs[name] = (tmp_path / name / "1" / "saved_model.pb").read_bytes()
        assert version_dir.endswith("1")
    assert b"FusedBatchNormV3" not in graphs["default"] and b"FusedBatchNormV3" in graphs["as-is"]
