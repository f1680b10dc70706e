import keras
import numpy as np
import pytest

import keras_regnet
from keras_regnet import complexity, zoo
from keras_regnet.layers import GroupedConv2D
from keras_regnet.specs import AnyNetSpec

# keras.Model.count_params() of tf-keras 2.21's RegNets at 224x224x3, 1000 classes
# (trainable weights plus BN moving statistics), measured with tf_keras.applications.
TF_KERAS_COUNT_PARAMS = {
    "RegNetX002": 2705640,
    "RegNetX004": 5194184,
    "RegNetX006": 6229320,
    "RegNetX008": 7296968,
    "RegNetX016": 9233640,
    "RegNetX032": 15359112,
    "RegNetX040": 22194312,
    "RegNetX064": 26283464,
    "RegNetX080": 39663112,
    "RegNetX120": 46202440,
    "RegNetX160": 54389704,
    "RegNetX320": 107973576,
    "RegNetY002": 3183844,
    "RegNetY004": 4371296,
    "RegNetY006": 6084920,
    "RegNetY008": 6293056,
    "RegNetY016": 11255102,
    "RegNetY032": 19502498,
    "RegNetY040": 20708928,
    "RegNetY064": 30665684,
    "RegNetY080": 39265812,
    "RegNetY120": 51918928,
    "RegNetY160": 83712956,
    "RegNetY320": 145205058,
}
LARGE = {name for name, count in TF_KERAS_COUNT_PARAMS.items() if count > 30_000_000}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in sorted(TF_KERAS_COUNT_PARAMS)]
)
def test_zoo_parity_with_tf_keras(name):
    model = getattr(keras_regnet, name)(weights=None)
    assert model.count_params() == TF_KERAS_COUNT_PARAMS[name]
    assert _trainable(model) == complexity.count(zoo.get_spec(name)).params
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1000)


def test_regnetx32_is_the_d2l_network():
    model = keras_regnet.RegNetX32()
    assert model.name == "regnetx32"
    assert model.input_shape == (None, 96, 96, 1) and model.output_shape == (None, 10)
    assert _trainable(model) == complexity.count(zoo.get_spec("RegNetX32"), (96, 96, 1), 10).params
    assert model.get_layer("regnetx32_stem_relu").output.shape[1:] == (48, 48, 32)
    assert model.get_layer("regnetx32_stage1_block3_out_relu").output.shape[1:] == (24, 24, 32)
    assert model.get_layer("regnetx32_stage2_block5_out_relu").output.shape[1:] == (12, 12, 80)
    conv = model.get_layer("regnetx32_stage2_block0_conv_3x3")
    assert isinstance(conv, GroupedConv2D) and conv.groups == 5 and conv.strides == (2, 2)
    assert not conv.use_bias
    bn = model.get_layer("regnetx32_stem_bn")
    assert bn.momentum == 0.9 and bn.epsilon == 1e-5
    assert model.get_layer("regnetx32_rescaling").scale == pytest.approx(1 / 255)
    # projection shortcut iff width or stride changes: only the first block of each stage
    names = {layer.name for layer in model.layers}
    assert "regnetx32_stage1_block0_skip_1x1" in names and "regnetx32_stage1_block1_skip_1x1" not in names


def test_classifier_activation_is_applied():
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 1)).astype("float32")
    soft = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
    np.testing.assert_allclose(np.sum(soft(images), axis=-1), 1.0, rtol=1e-5)
    logits = keras_regnet.RegNetX32(input_shape=(32, 32, 1), classifier_activation=None)
    logits.set_weights(soft.get_weights())
    np.testing.assert_allclose(keras.ops.softmax(logits(images)), soft(images), rtol=1e-5, atol=1e-6)
    assert np.min(logits(images)) < 0 or np.max(logits(images)) > 1


def test_regnetx080_first_stage_uses_one_group():
    model = keras_regnet.RegNetX080(weights=None, input_shape=(64, 64, 3), classes=10)
    conv = model.get_layer("regnetx080_stage1_block0_conv_3x3")
    assert not isinstance(conv, GroupedConv2D) and conv.groups == 1 and conv.filters == 80
    assert model.get_layer("regnetx080_stage2_block0_conv_3x3").groups == 2


@pytest.mark.parametrize("input_shape", [(64, 64, 1), (64, 64, 4), (123, 123, 3), (None, None, 3)])
def test_input_shapes(input_shape):
    model = keras_regnet.RegNetY002(weights=None, input_shape=input_shape, classes=5)
    size = 77 if input_shape[0] is None else input_shape[0]
    out = model(np.zeros((2, size, size, input_shape[2]), "float32"))
    assert out.shape == (2, 5)


def test_feature_extraction_and_pooling():
    features = keras_regnet.RegNetX002(weights=None, include_top=False)
    assert features.input_shape == (None, None, None, 3) and features.output_shape == (None, None, None, 368)
    x = np.zeros((1, 64, 64, 3), "float32")
    assert features(x).shape == (1, 2, 2, 368)
    for pooling in ("avg", "max"):
        model = keras_regnet.RegNetX002(weights=None, include_top=False, pooling=pooling)
        assert model.output_shape == (None, 368)


def test_input_tensor():
    tensor = keras.Input((48, 48, 3))
    model = keras_regnet.RegNetX002(weights=None, input_tensor=tensor, classes=4)
    assert model.inputs[0] is tensor and model.output_shape == (None, 4)


def test_include_preprocessing_off():
    model = keras_regnet.RegNetX32(include_preprocessing=False)
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(16, 16, 3)), "input_shape"),
        (dict(input_shape=(64, 64)), "input_shape"),
        (dict(pooling="mean", include_top=False), "pooling"),
        (dict(classes=0), "classes"),
        (dict(classifier_activation="not_an_activation"), "classifier_activation"),
        (dict(weights="imagenet", classes=10), "classes=1000"),
        (dict(weights="imagenet", input_shape=(224, 224, 1)), "3 input channels"),
        (dict(weights="imagenet", classifier_activation="sigmoid"), "classifier_activation"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"weights": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        keras_regnet.RegNetX002(**kwargs)


def test_anynet_and_no_imagenet_for_custom_models():
    spec = AnyNetSpec(16, [(1, 24, 8), (2, 48, 8, 2)])
    model = keras_regnet.AnyNet(spec, input_shape=(32, 32, 3), classes=7, name="tiny")
    assert _trainable(model) == complexity.count(spec, (32, 32, 3), 7).params
    d2l_style = keras_regnet.AnyNet(
        stem_width=16, stages=[(1, 24, 8), (2, 48, 8, 2)], input_shape=(32, 32, 3), classes=7, name="tiny"
    )
    assert d2l_style.count_params() == model.count_params()
    with pytest.raises(ValueError, match="imagenet"):
        keras_regnet.AnyNet(spec, weights="imagenet")
    with pytest.raises(ValueError, match="spec"):
        keras_regnet.AnyNet()


@pytest.mark.parametrize("block_type", ["bottleneck", "vgg", "inception"])
def test_blog_blocks_from_params(block_type):
    params = {
        "block_type": block_type,
        "num_stages": 4,
        "num_blocks_per_stage": [2, 4, 4, 2],
        "num_channels": [32, 64, 128, 256, 512],
        "bottleneck_ratio": 4,
        "group_width": 32,
    }
    model = keras_regnet.anynet_from_params(params)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    spec_block = "resnet_bottleneck" if block_type == "bottleneck" else block_type
    names = [layer.name for layer in model.layers]
    assert any(
        n.endswith("stage4_block1_out_relu" if spec_block == "resnet_bottleneck" else "stage4_block1_conv_3x3_bn")
        or n.endswith("stage4_block1_concat")
        for n in names
    )
    stages = [(d, w, 32, 0.25, 1 if i == 0 else 2) for i, (d, w) in enumerate(zip([2, 4, 4, 2], [64, 128, 256, 512]))]
    spec = AnyNetSpec(32, stages, block=spec_block, stem_stride=1)
    assert _trainable(model) == complexity.count(spec, (32, 32, 3), 10).params
    # spatial path: stride-1 stem and first stage, then three halvings: 32 -> 4
    assert model.layers[-3].output.shape[1:3] == (4, 4)
    with pytest.raises(ValueError, match="num_channels"):
        keras_regnet.anynet_from_params({**params, "num_channels": [32, 64]})


def test_model_round_trips_through_keras_file(tmp_path):
    model = keras_regnet.RegNetY002(weights=None, input_shape=(32, 32, 3), classes=3)
    path = tmp_path / "y.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x), loaded(x), rtol=1e-5, atol=1e-6)


def test_classifier_is_float32_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
        assert model.get_layer("regnetx32_stem_conv").compute_dtype == "bfloat16"
        assert model.get_layer("regnetx32_predictions").compute_dtype == "float32"
        assert model.output.dtype == "float32"
    finally:
        keras.config.set_dtype_policy(policy)


def test_keras_applications_helpers_are_exported():
    from keras_regnet import models

    x = np.arange(12, dtype="float32").reshape(1, 2, 2, 3)
    for module in (keras_regnet, models):
        assert module.preprocess_input(x) is x  # a pass-through: the models rescale inside
        with pytest.raises(ValueError):  # ImageNet's decoder checks the shape before any download
            module.decode_predictions(np.zeros((1, 10)))


def test_channels_first_is_refused_with_the_fix():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="set_image_data_format\\('channels_last'\\)"):
            keras_regnet.RegNetX002(weights=None)
    finally:
        keras.config.set_image_data_format(previous)


def test_a_too_large_network_is_refused_before_any_tensor():
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match="too large to build: params"):
        keras_regnet.AnyNet(stem_width=8, stages=[(1, 16, 8)], input_shape=(32, 32, 3), classes=10**9)
    assert time.perf_counter() - start < 1.0


def _last_gammas(model):
    return {
        layer.name: np.asarray(layer.gamma)
        for layer in model.layers
        if layer.name.endswith(("_conv_1x1_2_bn", "_conv_3x3_bn", "_skip_bn"))
    }


@pytest.mark.parametrize("build", [keras_regnet.RegNetX32, keras_regnet.RegNetY002, keras_regnet.AnyNet])
def test_zero_init_last_is_the_default_and_only_zeroes_each_branch_last_gamma(build):
    kwargs = dict(input_shape=(32, 32, 3), classes=10)
    if build is keras_regnet.AnyNet:
        kwargs.update(stem_width=8, stages=[(2, 16, 8), (1, 24, 8)])
    elif build is keras_regnet.RegNetY002:
        kwargs.update(weights=None)
    gammas = _last_gammas(build(**kwargs))
    last = [name for name in gammas if name.endswith("_conv_1x1_2_bn")]
    assert last and all(np.all(gammas[name] == 0) for name in last)
    assert all(np.all(g == 1) for name, g in gammas.items() if name not in last)  # other BNs start at 1
    off = _last_gammas(build(zero_init_last=False, **kwargs))
    assert all(np.all(g == 1) for g in off.values())
    with pytest.raises(TypeError, match="zero_init_last"):
        build(zero_init_last="yes", **kwargs)


def test_loaded_weights_override_zero_init(tmp_path):
    kwargs = dict(input_shape=(32, 32, 1), classes=10)
    trained = keras_regnet.RegNetX32(zero_init_last=False, **kwargs)
    path = tmp_path / "w.weights.h5"
    trained.save_weights(path)
    loaded = keras_regnet.RegNetX32(weights=str(path), **kwargs)  # zero_init_last=True by default
    gammas = _last_gammas(loaded)
    assert all(np.all(g == 1) for g in gammas.values())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_vgg_and_inception_blocks_have_no_branch_to_zero():
    params = {"block_type": "vgg", "num_stages": 2, "num_blocks_per_stage": [1, 1], "num_channels": [8, 16, 32]}
    model = keras_regnet.anynet_from_params(params, classes=10)
    gammas = [np.asarray(layer.gamma) for layer in model.layers if hasattr(layer, "gamma")]
    assert gammas and all(np.all(g == 1) for g in gammas)


def test_predict_of_arrays_takes_the_traced_path_with_kerass_outputs(tmp_path, monkeypatch):
    """`RegNetModel.predict` of an array (float or uint8, numpy or tensor, a last short batch) gives
    Keras' own `predict` outputs without Keras' data pipeline; a dataset still goes through Keras."""
    import tensorflow as tf

    from keras_regnet import fold
    from keras_regnet.models import RegNetModel

    model = keras_regnet.RegNetX32(input_shape=(32, 32, 1))
    x = np.random.default_rng(0).uniform(0, 255, (70, 32, 32, 1)).astype("float32")
    expected = keras.Model.predict(model, x, batch_size=32, verbose=0)
    keras_predict = keras.Model.predict
    with monkeypatch.context() as patch:
        patch.setattr(keras.Model, "predict", lambda *a, **k: pytest.fail("took Keras' predict"))
        for images in (x, tf.constant(x)):
            np.testing.assert_allclose(model.predict(images, batch_size=32, verbose=0), expected, atol=1e-6)
        pixels = np.round(x).astype("uint8")
        np.testing.assert_allclose(
            model.predict(pixels, batch_size=32, verbose=0),
            keras_predict(model, pixels, batch_size=32, verbose=0),
            atol=1e-6,
        )
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(32)
    np.testing.assert_allclose(model.predict(dataset, verbose=0), expected, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)
    # Cloning, folding and a .keras round trip keep the class (and so the fast path).
    assert type(keras.models.clone_model(model)) is RegNetModel
    assert type(fold.fold_batch_norm(model)) is RegNetModel
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(reloaded) is RegNetModel
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, atol=1e-6)
