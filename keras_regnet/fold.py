"""Batch-norm folding: an inference copy of a model with BN merged into its convolutions.

In inference a batch norm after a convolution is an affine map per output
channel, `y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`, so it can
be folded into the convolution: kernel scaled by `s = gamma / sqrt(var + eps)`
per output channel, plus a bias `beta - s * mean` (+ `s * b` when the
convolution had a bias `b`). Each folded batch norm becomes a
`FoldedBatchNorm` (an identity layer) of the same name, so every layer name (and the
weights of every other layer) stays as it was; the folded convolution keeps
its name and class (with `use_bias=True`). TensorFlow then runs each
convolution, its bias, the residual add and the ReLU as one fused oneDNN
kernel.

The folded model is for inference only (there is no batch norm left to
train) and gives the original's `training=False` outputs up to float32
rounding (well within 1e-4 for the RegNets here).

    folded = keras_regnet.fold.fold_batch_norm(model)
"""

import keras
import numpy as np

__all__ = ["FoldedBatchNorm", "fold_batch_norm", "foldable_pairs"]


@keras.saving.register_keras_serializable(package="keras_regnet")
class FoldedBatchNorm(keras.layers.Layer):
    """Where a batch norm was, after folding into the convolution before it: the identity.

    Accepts the batch norm's call arguments (`training`, `mask`) so the graph
    of the original model runs through it unchanged.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()


def _histories(obj):
    """Every `keras_history` [layer, node, tensor] referenced inside a config fragment."""
    if isinstance(obj, dict):
        if "keras_history" in obj:
            yield obj["keras_history"]
        for value in obj.values():
            yield from _histories(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _histories(value)


def _is_foldable_conv(layer):
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.Conv2DTranspose)
        and layer.data_format == "channels_last"
        and layer.activation in (None, keras.activations.linear)
        and layer.built
    )


def _is_foldable_bn(layer):
    return (
        isinstance(layer, keras.layers.BatchNormalization)
        and layer.axis in (-1, 3)
        and not layer.renorm
        and layer.built
        and len(layer.moving_mean.shape) == 1
    )


def foldable_pairs(model):
    """`{bn_layer_name: conv_layer_name}` for every batch norm that can be folded.

    A pair qualifies when the batch norm (last axis, no renorm) reads only the
    output of a channels-last `Conv2D` (any groups) without activation, that
    output feeds nothing else, and both layers are used once in the model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    layers = {layer.name: layer for layer in model.layers}
    if isinstance(model, keras.Sequential):
        pairs = {}
        for prev, layer in zip(model.layers, model.layers[1:]):
            if _is_foldable_bn(layer) and _is_foldable_conv(prev):
                pairs[layer.name] = prev.name
        return pairs
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise TypeError("fold_batch_norm needs a functional or Sequential keras.Model")
    inputs_of, calls, consumers = {}, {}, {}
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes", [])
        calls[entry["name"]] = len(nodes)
        inputs_of[entry["name"]] = [h[0] for h in _histories(nodes)]
        for source in inputs_of[entry["name"]]:
            consumers[source] = consumers.get(source, 0) + 1
    for history in _histories(config["output_layers"]):
        consumers[history[0]] = consumers.get(history[0], 0) + 1
    pairs = {}
    for name, sources in inputs_of.items():
        layer = layers.get(name)
        if layer is None or not _is_foldable_bn(layer) or calls[name] != 1 or len(sources) != 1:
            continue
        conv = layers.get(sources[0])
        if conv is None or not _is_foldable_conv(conv) or calls.get(conv.name) != 1:
            continue
        if consumers.get(conv.name, 0) != 1:  # the conv output feeds something besides the BN
            continue
        pairs[name] = conv.name
    return pairs


def _folded_weights(conv, bn):
    kernel = np.asarray(conv.kernel.numpy(), dtype=np.float64)
    bias = np.asarray(conv.bias.numpy(), dtype=np.float64) if conv.use_bias else 0.0
    channels = kernel.shape[-1]
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones(channels)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros(channels)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    variance = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    # The kernel's last axis is the output channel for dense and grouped kernels alike.
    return [(kernel * scale).astype(np.float32), (beta + (bias - mean) * scale).astype(np.float32)]


def fold_batch_norm(model):
    """A new inference model with every foldable batch norm merged into its convolution.

    Args:
        model: a built functional or Sequential `keras.Model` (e.g. any
            `keras_regnet` model). It is not modified.

    Returns:
        A `keras.Model` with the same name, inputs, outputs and layer names: the
        folded batch norms are `Identity` layers and their convolutions carry a
        bias. Its outputs equal `model(x, training=False)` up to float rounding.
        Use it for inference and export, not for training.
    """
    pairs = foldable_pairs(model)
    convs = {conv: bn for bn, conv in pairs.items()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in pairs:
            return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy)
        if layer.name in convs:
            config["use_bias"] = True
            config["bias_initializer"] = "zeros"
            config["bias_regularizer"] = None
            config["bias_constraint"] = None
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone)
    originals = {layer.name: layer for layer in model.layers}
    for layer in folded.layers:
        source = originals.get(layer.name)
        if layer.name in pairs or (source is None and not layer.weights):  # e.g. a renamed InputLayer
            continue
        if source is None:
            raise ValueError(f"fold_batch_norm: layer {layer.name!r} of the clone has no original")
        if layer.name in convs:
            layer.set_weights(_folded_weights(source, originals[convs[layer.name]]))
        elif source.weights:
            layer.set_weights(source.get_weights())
    return folded
