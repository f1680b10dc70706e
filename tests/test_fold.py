import keras
import numpy as np
import pytest

import keras_regnet
from keras_regnet import fold
from keras_regnet.layers import FusedBatchNormalization, GroupedConv2D


def _trained_looking(model, seed=0):
    """Random BN statistics and affine terms, so a wrong fold shows in the outputs."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        if "moving_variance" in w.path:
            values.append(rng.uniform(0.5, 1.5, w.shape))
        elif "gamma" in w.path:
            values.append(rng.uniform(0.5, 1.5, w.shape))
        elif "moving_mean" in w.path or "beta" in w.path or "bias" in w.path:
            values.append(rng.normal(size=w.shape) * 0.2)
        else:
            values.append(w.numpy())
    model.set_weights([np.asarray(v, "float32") for v in values])
    return model


def _images(shape, n=4, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


@pytest.mark.parametrize("name, shape", [("RegNetX32", (96, 96, 1)), ("RegNetY002", (64, 64, 3))])
def test_folded_model_matches_within_1e_4(name, shape):
    model = _trained_looking(getattr(keras_regnet, name)(weights=None, input_shape=shape, classifier_activation=None))
    folded = fold.fold_batch_norm(model)
    images = _images(shape)
    np.testing.assert_allclose(folded(images), model(images, training=False), rtol=1e-4, atol=1e-4)
    # every BN sits right after a convolution in these networks: all of them fold
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(fold.foldable_pairs(model)) == len(bns) > 0
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded.layers)


def test_names_kept_weights_moved_and_original_untouched():
    model = _trained_looking(keras_regnet.RegNetX32(input_shape=(32, 32, 1)))
    before = [w.numpy().copy() for w in model.weights]
    folded = fold.fold_batch_norm(model)
    assert [l.name for l in folded.layers] == [l.name for l in model.layers]
    assert folded.name == model.name
    conv = folded.get_layer("regnetx32_stage1_block0_conv_3x3")
    assert isinstance(conv, GroupedConv2D) and conv.use_bias and conv.groups == 2
    assert isinstance(folded.get_layer("regnetx32_stage1_block0_conv_3x3_bn"), fold.FoldedBatchNorm)
    assert folded.get_layer("regnetx32_stem_bn").weights == []
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    head = model.get_layer("regnetx32_predictions").get_weights()
    for a, b in zip(head, folded.get_layer("regnetx32_predictions").get_weights()):
        np.testing.assert_array_equal(a, b)


def test_folded_model_round_trips_through_keras_file(tmp_path):
    folded = fold.fold_batch_norm(_trained_looking(keras_regnet.RegNetX32(input_shape=(32, 32, 1))))
    path = str(tmp_path / "folded.keras")
    folded.save(path)
    loaded = keras.saving.load_model(path)
    images = _images((32, 32, 1))
    np.testing.assert_allclose(loaded(images), folded(images), rtol=1e-6, atol=1e-6)


def test_only_safe_pairs_fold():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="shared_out")(inputs)  # feeds BN and the add
    b = keras.layers.BatchNormalization(name="bn_after_shared")(a)
    c = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="with_act")(inputs)
    d = keras.layers.BatchNormalization(name="bn_after_act")(c)
    e = keras.layers.Conv2D(4, 1, use_bias=True, name="biased")(keras.layers.Add()([a, b, d]))
    f = FusedBatchNormalization(name="bn_ok")(e)
    g = keras.layers.BatchNormalization(name="bn_after_add")(keras.layers.Add()([f, d]))
    model = _trained_looking(keras.Model(inputs, g))
    assert fold.foldable_pairs(model) == {"bn_ok": "biased"}
    folded = fold.fold_batch_norm(model)
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(folded(images), model(images, training=False), rtol=1e-4, atol=1e-4)


def test_sequential_and_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
            ]
        )
        _trained_looking(model)
        folded = fold.fold_batch_norm(model)
        assert len(fold.foldable_pairs(model)) == 1
        assert folded.layers[0].compute_dtype == "bfloat16"
        images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
        np.testing.assert_allclose(
            np.asarray(folded(images), "float32"),
            np.asarray(model(images, training=False), "float32"),
            rtol=3e-2,
            atol=3e-2,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_rejects_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        fold.fold_batch_norm(keras.layers.Dense(2))
