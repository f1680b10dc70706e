import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_regnet.layers import FusedBatchNormalization


def _pair(shape, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    channels = shape[kwargs.get("axis", -1)]
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    reference.build(shape)
    fused.build(shape)
    weights = [
        w
        for w in (
            rng.uniform(0.5, 1.5, channels),
            rng.normal(size=channels),
            rng.normal(size=channels),
            rng.uniform(0.5, 2.0, channels),
        )
    ]
    weights = [np.asarray(w, "float32") for w in weights][-len(reference.weights) :]
    if len(reference.weights) == 4:
        reference.set_weights(weights)
        fused.set_weights(weights)
    return reference, fused


@pytest.mark.parametrize("policy, tol", [("float32", 1e-5), ("mixed_bfloat16", 1e-2)])
def test_matches_keras_batch_norm_forward_backward_and_statistics(policy, tol):
    keras.mixed_precision.set_global_policy(policy)
    try:
        shape = (8, 5, 5, 6)
        rng = np.random.default_rng(1)
        x = tf.constant((rng.normal(size=shape) * 3 + 2).astype("float32"))
        upstream = tf.constant(rng.normal(size=shape).astype("float32"))
        reference, fused = _pair(shape)
        grads, outputs = [], []
        for layer in (reference, fused):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)
                loss = tf.reduce_sum(tf.cast(y, "float32") * upstream)
            assert y.dtype == layer.compute_dtype
            outputs.append(np.asarray(y, "float32"))
            grads.append([g.numpy() for g in tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])])
        np.testing.assert_allclose(outputs[1], outputs[0], rtol=tol, atol=tol)
        for a, b in zip(*grads):
            np.testing.assert_allclose(b, a, rtol=tol, atol=tol * np.abs(a).max())
        # moving statistics follow Keras (biased batch variance), to float rounding
        for a, b in zip(reference.get_weights(), fused.get_weights()):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(fused(x), "float32"), np.asarray(reference(x), "float32"), rtol=tol, atol=tol
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_inside_tf_function_and_frozen_layer_uses_moving_statistics():
    shape = (4, 3, 3, 2)
    reference, fused = _pair(shape, seed=2)
    x = tf.constant(np.random.default_rng(3).normal(size=shape).astype("float32"))
    np.testing.assert_allclose(
        tf.function(lambda t: fused(t, training=True))(x), reference(x, training=True), rtol=1e-5, atol=1e-5
    )
    fused.trainable = False
    reference.trainable = False
    before = [w.copy() for w in fused.get_weights()]
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-5)
    for a, b in zip(before, fused.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [dict(axis=1), dict(center=False, scale=False)])
def test_other_configurations(kwargs):
    shape = (4, 3, 3, 2)
    reference, fused = _pair(shape, seed=4, **kwargs)
    x = tf.constant(np.random.default_rng(5).normal(size=shape).astype("float32"))
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused(x), reference(x), rtol=1e-5, atol=1e-5)


def test_config_and_keras_file_round_trip(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")(inputs))
    config = model.get_layer("bn").get_config()
    assert config["momentum"] == 0.9 and config["epsilon"] == 1e-5
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("bn"), FusedBatchNormalization)
    assert isinstance(loaded.get_layer("bn"), keras.layers.BatchNormalization)


def test_statistics_match_keras_with_an_unknown_batch_size():
    """Traced with a None batch dimension (the sample count is then computed in the graph)."""
    shape = (8, 5, 5, 6)
    x = tf.constant(np.random.default_rng(2).normal(size=shape).astype("float32") * 2 + 1)
    reference, fused = _pair(shape)
    for layer in (reference, fused):
        step = tf.function(
            lambda a, layer=layer: layer(a, training=True), input_signature=[tf.TensorSpec((None, 5, 5, 6))]
        )
        step(x)
        step(x[:3])  # a partial batch: a different count, same traced function
    for a, b in zip(reference.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
