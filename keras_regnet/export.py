"""Export a Keras image classifier as a SavedModel that TF Serving can load.

Why a module of its own: a trained `.keras` file is not what a serving stack
reads. TF Serving wants `BASE/<version>/saved_model.pb` with a `serving_default`
signature; clients want named outputs rather than one unnamed tensor; and an
export is only trustworthy once the reloaded graph has been shown to give the
model's own numbers. This module does those three things with Keras 3's own
`keras.export.ExportArchive` (no hand-written graph surgery).

The signature (`serving_default`, also reachable as `loaded.serve`):

    inputs:  images        [None, H, W, C]  uint8 (raw pixels, default) or float32
    outputs: probabilities [None, classes]  float32
             classes       [None]           int64  (argmax of probabilities)

The models of this package take raw pixels in [0, 255] and rescale inside, so
`uint8` is the natural wire type: 4x smaller requests and no way to send a
pixel out of range. Use `input_dtype="float32"` for models that expect
pre-normalised floats.

Logits or probabilities? With `logits=None` (default) the final layer decides:
if the layer producing the output has an `activation` attribute that is the
identity (`classifier_activation=None` -> `linear`), the outputs are taken to
be logits and softmax is applied; any other activation (softmax, sigmoid) or a
`Softmax`/`Activation` layer is taken to produce probabilities already. A
final layer without an `activation` attribute (e.g. a custom layer) cannot be
judged, so pass `logits=True/False` explicitly there.
"""

import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

SIGNATURE_NAME = "serving_default"
ENDPOINT_NAME = "serve"
INPUT_NAME = "images"
INPUT_DTYPES = ("uint8", "float32")

# Run in a fresh interpreter by `verify_export`: only TensorFlow and NumPy, so
# the check proves the SavedModel stands alone (no Keras, no custom classes).
_VERIFY_SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:4]
loaded = tf.saved_model.load(export_dir)
fn = loaded.signatures["serving_default"]
spec = fn.structured_input_signature[1]["images"]
x = np.load(inputs_path).astype(spec.dtype.as_numpy_dtype)
results = {}
# Two batch sizes prove the batch dimension is dynamic.
for tag, batch in (("one", x[:1]), ("all", x)):
    out = fn(images=tf.constant(batch))
    for key, value in out.items():
        results[f"{tag}/{key}"] = value.numpy()
results["batch_dim"] = np.array(spec.shape[0] is None)
np.savez(outputs_path, **results)
"""


def _validate_model(model):
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise TypeError(
            "model must be a built functional or Sequential keras.Model with "
            "known inputs and outputs (subclassed models are not supported)"
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            "model must have exactly one input (images) and one output "
            f"(class scores), got {len(inputs)} inputs and {len(outputs)} "
            "outputs"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(f"model input must be images of a fixed size [batch, H, W, C], got shape {shape}")
    if len(outputs[0].shape) != 2:
        raise ValueError(f"model output must be class scores [batch, classes], got shape {tuple(outputs[0].shape)}")
    return shape[1:]


def outputs_are_logits(model):
    """Whether `model`'s output is logits, judged from its final layer.

    Returns True for an identity activation, False for any other activation,
    and None when the final layer has no `activation` to judge by.
    """
    from keras_regnet.training import final_activation

    name = final_activation(model)
    return None if name is None else name == "linear"


def _check_arguments(path, version, input_dtype, logits, overwrite, verify):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {path!r}")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be an int >= 1, got {version!r}")
    if version < 1:
        raise ValueError(f"version must be an int >= 1, got {version}")
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    if logits not in (None, True, False):
        raise TypeError(f"logits must be None, True or False, got {logits!r}")
    for name, value in (("overwrite", overwrite), ("verify", verify)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    base = os.fspath(path)
    if os.path.exists(base) and not os.path.isdir(base):
        raise ValueError(f"path must be a directory, {base!r} is a file")
    version_dir = os.path.join(base, str(version))
    if os.path.isdir(version_dir) and os.listdir(version_dir) and not overwrite:
        raise ValueError(
            f"path already holds version {version} ({version_dir!r} is not "
            "empty); choose another version (--version) or replace it (--overwrite, overwrite=True)"
        )
    return version_dir


def export_saved_model(
    model,
    path,
    *,
    version=1,
    input_dtype="uint8",
    logits=None,
    overwrite=False,
    verify=True,
    fold_batch_norm=None,
):
    """Write `model` to `path/<version>/` as a TF Serving SavedModel.

    Args:
        model: a functional/Sequential `keras.Model` with one image input
            `[batch, H, W, C]` and one output `[batch, classes]`.
        path: base folder; TF Serving watches it for numbered versions.
        version: int >= 1, the version subfolder.
        input_dtype: `"uint8"` (raw pixels) or `"float32"`.
        logits: None to detect from the final layer (see module docstring),
            True to apply softmax, False to pass outputs through.
        overwrite: replace a non-empty existing version folder.
        verify: reload the export in a fresh process and compare outputs
            (`verify_export`); raises `ValueError` on mismatch.
        fold_batch_norm: serve a copy with each batch norm folded into its
            convolution (`keras_regnet.fold`): outputs within 1e-4 of the
            model's (verified at that tolerance). None (default): fold when
            the model has a foldable batch norm, the faster path measured
            (RegNetX32's SavedModel: 1.1x in float32, 1.7x in bfloat16 on the
            AMD EPYC, bench/inference_paths.py); False serves the model as is.

    Returns:
        The version folder path (str).
    """
    from keras_regnet.backends import require_tensorflow

    require_tensorflow("SavedModel export")
    version_dir = _check_arguments(path, version, input_dtype, logits, overwrite, verify)
    height, width, channels = _validate_model(model)
    if logits is None:
        logits = outputs_are_logits(model)
        if logits is None:
            raise ValueError(
                "cannot tell whether the model outputs logits or "
                "probabilities (its final layer has no activation); pass "
                "logits=True or logits=False"
            )

    import keras
    import tensorflow as tf

    if fold_batch_norm is not None and not isinstance(fold_batch_norm, bool):
        raise TypeError(f"fold_batch_norm must be None, True or False, got {fold_batch_norm!r}")
    if fold_batch_norm is None:
        from keras_regnet.fold import foldable_pairs

        fold_batch_norm = bool(foldable_pairs(model))
    served = model
    if fold_batch_norm:
        from keras_regnet.fold import fold_batch_norm as fold

        served = fold(model)

    def serve(images):
        x = tf.cast(images, served.inputs[0].dtype)
        scores = tf.cast(served(x, training=False), tf.float32)
        probabilities = tf.nn.softmax(scores, axis=-1) if logits else scores
        return {
            "probabilities": probabilities,
            "classes": tf.argmax(probabilities, axis=-1, output_type=tf.int64),
        }

    spec = tf.TensorSpec([None, height, width, channels], input_dtype, name=INPUT_NAME)
    archive = keras.export.ExportArchive()
    archive.track(served)
    archive.add_endpoint(ENDPOINT_NAME, serve, input_signature=[spec])
    if os.path.isdir(version_dir):
        import shutil

        shutil.rmtree(version_dir)
    archive.write_out(version_dir, verbose=False)
    if must_compile_functions(version_dir):
        warnings.warn(
            f"the SavedModel at {version_dir!r} contains XLA must-compile "
            "functions (Keras 3 compiles grouped Conv2D with XLA on the "
            "TensorFlow backend); TensorFlow runs it, but TF Serving on CPU runs "
            "XLA only with --xla_cpu_compilation_enabled=true. Models built with "
            "keras_regnet.layers.GroupedConv2D avoid this.",
            stacklevel=2,
        )
    if verify:
        verify_export(version_dir, model, logits=logits, atol=1e-4 if fold_batch_norm else 1e-5)
    return version_dir


def must_compile_functions(path):
    """Names of graph functions marked `_XlaMustCompile` in a SavedModel.

    Keras 3 wraps grouped convolutions in `tf.function(jit_compile=True)` on
    the TensorFlow backend; such functions run only where XLA is available,
    which TF Serving enables on CPU only behind a flag.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    return sorted(
        function.signature.name
        for graph in saved.meta_graphs
        for function in graph.graph_def.library.function
        if "_XlaMustCompile" in function.attr and function.attr["_XlaMustCompile"].b
    )


def _sample_inputs(model, batch_size, seed):
    """Whole-number pixels in [0, 255]: exact in both uint8 and float32."""
    shape = (batch_size, *tuple(model.inputs[0].shape)[1:])
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=shape).astype(np.float32)


def verify_export(path, model, *, inputs=None, logits=None, atol=1e-5, timeout=300):
    """Check a SavedModel against `model` in a fresh Python process.

    The subprocess imports only TensorFlow and NumPy and calls the
    `serving_default` signature on `inputs` (default: 4 seeded random images
    in the signature's dtype), once with the first image alone and once with
    all, proving the batch dimension is dynamic. Its `probabilities` must
    equal the Keras model's (softmax applied when `logits`) within `atol`, and
    `classes` must be their argmax.

    Args:
        path: a version folder holding `saved_model.pb`.
        model: the Keras model the export came from.
        inputs: optional array `[batch, H, W, C]` to compare on; it is cast
            to the signature's dtype, so give whole numbers for uint8.
        logits: as in `export_saved_model` (None: detect).
        atol: absolute tolerance, > 0.
        timeout: seconds allowed for the subprocess, > 0.

    Returns:
        The largest absolute difference found (float).

    Raises:
        ValueError: outputs differ, or the SavedModel does not load/run.
    """
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"path must be a SavedModel version folder, no saved_model.pb in {path!r}")
    _validate_model(model)
    for name, value in (("atol", atol), ("timeout", timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a positive number, got {value!r}")
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if logits is None:
        logits = bool(outputs_are_logits(model))
    if inputs is None:
        inputs = _sample_inputs(model, batch_size=4, seed=0)
    inputs = np.asarray(inputs)
    expected_shape = tuple(model.inputs[0].shape)[1:]
    if inputs.ndim != 4 or inputs.shape[1:] != expected_shape or not len(inputs):
        raise ValueError(f"inputs must have shape [batch>0, {', '.join(map(str, expected_shape))}], got {inputs.shape}")

    import keras

    scores = np.asarray(
        keras.ops.convert_to_numpy(model(inputs.astype(model.inputs[0].dtype), training=False)),
        dtype=np.float32,
    )
    expected = np.asarray(keras.ops.convert_to_numpy(keras.ops.softmax(scores, axis=-1)) if logits else scores)

    with tempfile.TemporaryDirectory(prefix="keras_regnet_verify_") as tmp:
        inputs_path = os.path.join(tmp, "inputs.npy")
        outputs_path = os.path.join(tmp, "outputs.npz")
        np.save(inputs_path, inputs)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        try:
            done = subprocess.run(
                [sys.executable, "-c", _VERIFY_SCRIPT, path, inputs_path, outputs_path],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            raise ValueError(f"verifying {path!r} took longer than {timeout} s") from None
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise ValueError(f"the SavedModel at {path!r} failed to load or run in a fresh process: {tail}")
        with np.load(outputs_path) as got:
            got = dict(got)

    if not got["batch_dim"]:
        raise ValueError(f"the SavedModel at {path!r} has a fixed batch size")
    worst = 0.0
    for tag, want in (("one", expected[:1]), ("all", expected)):
        probabilities = got[f"{tag}/probabilities"]
        if probabilities.shape != want.shape:
            raise ValueError(
                f"SavedModel probabilities have shape {probabilities.shape}, the Keras model gives {want.shape}"
            )
        diff = float(np.max(np.abs(probabilities - want)))
        worst = max(worst, diff)
        if not diff <= atol:
            raise ValueError(
                f"SavedModel at {path!r} differs from the Keras model: max "
                f"|difference| of probabilities {diff:.3g} > atol {atol:g}"
            )
        if not np.array_equal(got[f"{tag}/classes"], np.argmax(probabilities, -1)):
            raise ValueError(f"SavedModel at {path!r}: classes are not the argmax of probabilities")
    return worst
