import os

import keras
import numpy as np
import pytest

import keras_regnet
from keras_regnet import weights as weights_lib

tf_keras = pytest.importorskip("tf_keras")


def _randomize(model, seed):
    """Random weights with positive BN variances, so every mapping error shows."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        if "moving_variance" in w.name:
            values.append(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        else:
            values.append((rng.normal(size=w.shape) * 0.1).astype("float32"))
    model.set_weights(values)


@pytest.mark.parametrize("name", ["RegNetX002", "RegNetY002"])
def test_tf_keras_h5_weights_give_the_same_outputs(name, tmp_path):
    reference = getattr(tf_keras.applications, name)(weights=None, input_shape=(64, 64, 3))
    _randomize(reference, 0)
    path = str(tmp_path / f"{name.lower()}.h5")
    reference.save_weights(path)
    images = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = reference(images, training=False).numpy()  # tf-keras never applies softmax
    ours = getattr(keras_regnet, name)(weights=path, input_shape=(64, 64, 3), classifier_activation=None)
    np.testing.assert_allclose(ours(images, training=False), expected, rtol=1e-5, atol=1e-5)
    features = getattr(keras_regnet, name)(weights=path, include_top=False, input_shape=(64, 64, 3))
    assert features(images).shape == (2, 2, 2, 368)


def test_mismatched_architecture_is_reported(tmp_path):
    reference = tf_keras.applications.RegNetX002(weights=None, input_shape=(64, 64, 3))
    path = str(tmp_path / "x002.h5")
    reference.save_weights(path)
    with pytest.raises(ValueError, match="regnetx004"):
        keras_regnet.RegNetX004(weights=path, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="shapes"):
        keras_regnet.RegNetX002(weights=path, input_shape=(64, 64, 3), classes=10, classifier_activation=None)


def test_keras_weights_file_and_missing_file(tmp_path):
    model = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
    path = str(tmp_path / "x32.weights.h5")
    model.save_weights(path)
    again = keras_regnet.RegNetX32(weights=path, input_shape=(32, 32, 1))
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        keras_regnet.RegNetX32(weights=str(tmp_path / "missing.h5"))


def test_imagenet_offline_error_says_how_to_pass_a_local_file(monkeypatch):
    calls = []

    def offline(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError, match=r"weights='/path/to/regnety002_notop.h5'"):
        keras_regnet.RegNetY002(include_top=False)
    fname, origin, kwargs = calls[0]
    assert origin.endswith("/regnet/regnety002_notop.h5")
    assert kwargs["file_hash"] == weights_lib.IMAGENET_WEIGHTS_SHA256["y002"][1]
    assert len(weights_lib.IMAGENET_WEIGHTS_SHA256) == 24


def test_imagenet_file_from_the_keras_cache_is_loaded(monkeypatch, tmp_path):
    reference = tf_keras.applications.RegNetX002(weights=None)
    _randomize(reference, 2)
    path = str(tmp_path / "regnetx002.h5")
    reference.save_weights(path)
    monkeypatch.setattr(keras.utils, "get_file", lambda fname, origin, **kwargs: path)
    ours = keras_regnet.RegNetX002(classifier_activation=None)
    images = np.random.default_rng(3).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(ours(images), reference(images).numpy(), rtol=1e-5, atol=1e-5)
    assert os.path.exists(path)
