import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_regnet import layers as layers_module
from keras_regnet.layers import GroupedConv2D, PointwiseConv2D, SqueezeExcite


def _relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12))


def _assert_same_gradients(ref, ours, x, rng, tolerance=1e-5):
    """Input, kernel and bias gradients of a random projection of the outputs agree, eager and traced."""
    probe = tf.constant(rng.normal(size=ref(x).shape).astype("float32"))

    def loss_and_gradients(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * probe)
        return tape.gradient(loss, [x, layer.kernel, layer.bias])

    expected = loss_and_gradients(ref, x)
    for run in (loss_and_gradients, tf.function(loss_and_gradients)):
        for g_ref, g_ours in zip(expected, run(ours, x)):
            assert _relative(g_ref, g_ours) < tolerance


def _assert_grouped_conv_matches_keras(kwargs, x, rng):
    """Keras' Conv2D and our GroupedConv2D with the same random weights: same outputs and gradients.
    Returns Keras' layer."""
    ref, ours = keras.layers.Conv2D(**kwargs), GroupedConv2D(**kwargs)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights([rng.normal(size=w.shape).astype("float32") for w in ref.weights])
    ref.set_weights(ours.get_weights())
    _assert_same_gradients(ref, ours, x, rng)
    return ref


@pytest.mark.parametrize(
    "groups, strides, channels_in, filters",
    [
        (2, 1, 8, 8),
        (2, 2, 8, 16),
        (4, 1, 16, 8),
        (4, 2, 16, 16),
        (5, 2, 20, 10),
        (16, 1, 16, 16),
        (16, 2, 16, 32),
    ],
)
def test_grouped_conv_matches_keras_conv2d(groups, strides, channels_in, filters):
    rng = np.random.default_rng(groups * 10 + strides)
    x = tf.constant(rng.normal(size=(2, 11, 11, channels_in)).astype("float32"))
    kwargs = dict(filters=filters, kernel_size=3, strides=strides, padding="same", groups=groups)
    ref, ours = keras.layers.Conv2D(**kwargs), GroupedConv2D(**kwargs)
    ref.build(x.shape)
    ours.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    ours.set_weights(ref.get_weights())
    probe = tf.constant(rng.normal(size=ref(x).shape).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ref, y_ours = ref(x), ours(x)
        loss_ref, loss_ours = tf.reduce_sum(y_ref * probe), tf.reduce_sum(y_ours * probe)
    assert _relative(y_ref, y_ours) < 1e-4
    for g_ref, g_ours in zip(
        tape.gradient(loss_ref, [x, ref.kernel, ref.bias]), tape.gradient(loss_ours, [x, ours.kernel, ours.bias])
    ):
        assert _relative(g_ref, g_ours) < 1e-4


@pytest.mark.parametrize(
    "groups, strides, channels_in, filters, padding",
    [
        (8, 1, 16, 16, "same"),  # 2 channels a group: depthwise conv x2 summed in groups
        (4, 2, 16, 8, "same"),  # 4 in, 2 out a group, strided
        (6, 2, 24, 48, "valid"),  # 4 in, 8 out a group
        (4, 1, 4, 12, "same"),  # 1 in, 3 out a group: the depthwise conv alone
        (2, 1, 16, 16, "same"),  # 8 channels a group: the split form
    ],
)
def test_grouped_conv_without_onednn_matches_keras_conv2d(monkeypatch, groups, strides, channels_in, filters, padding):
    """The forms taken where oneDNN is off (AMD CPUs) give Conv2D's outputs and gradients, traced,
    eager, and with an unknown batch and image size."""
    monkeypatch.setattr(layers_module, "_native_grouped_parts", lambda dtype: frozenset())
    rng = np.random.default_rng(groups * 100 + channels_in + filters)
    x = tf.constant(rng.normal(size=(3, 9, 9, channels_in)).astype("float32"))
    kwargs = dict(filters=filters, kernel_size=3, strides=strides, padding=padding, groups=groups)
    ref = _assert_grouped_conv_matches_keras(kwargs, x, rng)
    inputs = keras.Input((None, None, channels_in))
    model = keras.Model(inputs, GroupedConv2D(**kwargs)(inputs))
    model.layers[1].set_weights(ref.get_weights())
    assert _relative(ref(x), model(x)) < 1e-5
    assert _relative(ref(x), tf.function(model)(x)) < 1e-5


@pytest.mark.skipif(not layers_module._onednn_enabled(), reason="the native grouped forward needs oneDNN")
@pytest.mark.parametrize("native", [{"forward", "input_gradient"}, {"forward", "kernel_gradient"}, {"forward"}])
@pytest.mark.parametrize("group_width", [2, 8])
def test_native_forward_with_a_portable_gradient_matches_keras_conv2d(monkeypatch, native, group_width):
    """Where the native kernel's forward works but a gradient does not (a build's bf16 kernel gradient),
    the missing gradient comes from the package's form: same outputs and gradients, eager and traced."""
    monkeypatch.setattr(layers_module, "_native_grouped_parts", lambda dtype: frozenset(native))
    rng = np.random.default_rng(group_width)
    x = tf.constant(rng.normal(size=(2, 9, 9, 16)).astype("float32"))
    kwargs = dict(filters=16, kernel_size=3, strides=2, padding="same", groups=16 // group_width)
    _assert_grouped_conv_matches_keras(kwargs, x, rng)


def test_the_probe_keeps_only_parts_that_run_right(monkeypatch):
    """A native kernel gradient that fails (or computes wrong numbers) is left out, the rest kept."""
    if not layers_module._onednn_enabled():
        assert layers_module._native_grouped_parts("float32") == frozenset()
        return
    assert layers_module._probe_native_grouped_parts("float32") == layers_module.NATIVE_PARTS
    real = tf.raw_ops.Conv2DBackpropFilter

    def wrong(**kwargs):
        return real(**kwargs) * 1.5

    monkeypatch.setattr(tf.raw_ops, "Conv2DBackpropFilter", wrong)
    monkeypatch.setattr(tf.nn, "conv2d", _conv2d_whose_kernel_gradient_is(wrong))
    assert layers_module._probe_native_grouped_parts("float32") == {"forward", "input_gradient"}


def _conv2d_whose_kernel_gradient_is(kernel_gradient):
    real = tf.nn.conv2d

    def conv2d(x, k, strides, padding, **kwargs):
        @tf.custom_gradient
        def native(x, k):
            def gradient(dy):
                dx = tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x),
                    filter=k,
                    out_backprop=dy,
                    strides=[1, strides, strides, 1],
                    padding=padding,
                )
                dk = kernel_gradient(
                    input=x,
                    filter_sizes=tf.shape(k),
                    out_backprop=dy,
                    strides=[1, strides, strides, 1],
                    padding=padding,
                )
                return dx, dk

            return real(x, k, strides, padding), gradient

        if k.shape[2] == x.shape[-1]:  # the probe's split reference: dense, left alone
            return real(x, k, strides, padding, **kwargs)
        return native(x, k)

    return conv2d


@pytest.mark.parametrize("strides, size, padding", [(1, 4, "same"), (2, 5, "same"), (2, 4, "valid")])
def test_pointwise_conv_matmul_path_matches_keras_conv2d(monkeypatch, strides, size, padding):
    """The matmul form (taken where oneDNN is off) gives Conv2D's outputs and gradients, traced or not."""
    monkeypatch.setattr(layers_module, "_onednn_enabled", lambda: False)
    rng = np.random.default_rng(strides * 10 + size)
    x = tf.constant(rng.normal(size=(3, size, size, 128)).astype("float32"))
    kwargs = dict(filters=256, kernel_size=1, strides=strides, padding=padding)
    ref, ours = keras.layers.Conv2D(**kwargs), PointwiseConv2D(**kwargs)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(ref.get_weights())
    _assert_same_gradients(ref, ours, x, rng)
    # Unknown batch size (a functional model's symbolic call, a served model): same shapes.
    inputs = keras.Input((size, size, 128))
    model = keras.Model(inputs, PointwiseConv2D(**kwargs)(inputs))
    model.layers[1].set_weights(ref.get_weights())
    assert model.output_shape == (None, *ref(x).shape[1:])
    assert _relative(ref(x), model(x)) < 1e-5
    assert PointwiseConv2D.from_config(ref.get_config()).get_config() == ref.get_config()


def test_grouped_conv_inside_tf_function_and_valid_padding():
    layer = GroupedConv2D(8, 3, padding="valid", groups=4, use_bias=False)
    x = tf.random.normal([1, 7, 7, 8])
    ref = keras.layers.Conv2D(8, 3, padding="valid", groups=4, use_bias=False)
    ref.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(ref.get_weights())
    out = tf.function(layer)(x)
    assert out.shape == (1, 5, 5, 8)
    assert _relative(ref(x), out) < 1e-4


def test_grouped_conv_config_round_trip():
    layer = GroupedConv2D(16, 3, strides=2, groups=4, padding="same", name="g")
    clone = GroupedConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    plain = keras.layers.Conv2D.from_config(layer.get_config())  # configs are interchangeable
    assert plain.groups == 4


def test_squeeze_excite_math_and_config():
    rng = np.random.default_rng(0)
    layer = SqueezeExcite(3, name="se")
    x = rng.normal(size=(2, 5, 5, 8)).astype("float32")
    y = layer(x)
    k1, b1, k2, b2 = [w.numpy() for w in layer.weights]
    assert k1.shape == (1, 1, 8, 3) and k2.shape == (1, 1, 3, 8)
    pooled = x.mean(axis=(1, 2))
    hidden = np.maximum(pooled @ k1[0, 0] + b1, 0)
    gate = 1 / (1 + np.exp(-(hidden @ k2[0, 0] + b2)))
    np.testing.assert_allclose(y, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)
    clone = SqueezeExcite.from_config(layer.get_config())
    assert clone.se_filters == 3 and clone.name == "se"
    with pytest.raises(ValueError, match="se_filters"):
        SqueezeExcite(0)


def test_layers_round_trip_through_keras_file(tmp_path):
    inputs = keras.Input((8, 8, 4))
    x = GroupedConv2D(8, 3, groups=2, padding="same")(inputs)
    x = SqueezeExcite(2)(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1], GroupedConv2D) and isinstance(loaded.layers[2], SqueezeExcite)
    data = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_allclose(model(data), loaded(data), rtol=1e-6, atol=1e-6)


def test_training_step_without_onednn_uses_the_portable_path(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, keras
        from keras_regnet import layers
        inputs = keras.Input((12, 12, 8))
        x = layers.GroupedConv2D(16, 3, strides=2, groups=4, padding="same")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(3)(x))
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = model.layers[1].kernel.numpy().copy()
        rng = np.random.default_rng(0)
        history = model.fit(rng.normal(size=(16, 12, 12, 8)), rng.integers(0, 3, 16), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert not np.allclose(before, model.layers[1].kernel.numpy())
        print("native", sorted(layers._native_grouped_parts("float32")))
    """)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "native []" in result.stdout
