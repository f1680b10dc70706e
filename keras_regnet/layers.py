"""Keras layers that Keras lacks or runs slowly: GroupedConv2D, FusedBatchNormalization, SqueezeExcite.

Why GroupedConv2D exists: on the TensorFlow backend Keras 3 routes every
grouped convolution through XLA ("grouped convolutions are broken on CPU
without XLA"), and XLA's CPU grouped convolution is 30-230x slower than
TensorFlow's native oneDNN kernel. This layer keeps `keras.layers.Conv2D`'s
constructor, config and kernel layout (weights are interchangeable) and picks
the fastest correct form per backend:

  * TensorFlow, native grouped conv with a working gradient (oneDNN on, or a
    GPU): one `tf.nn.conv2d` call; depthwise case (one channel per group):
    `tf.nn.depthwise_conv2d`;
  * TensorFlow without the native gradient (e.g. TF_ENABLE_ONEDNN_OPTS=0) and
    JAX: G dense convolutions on channel slices, concatenated;
  * other backends (torch): Keras' own grouped convolution, which is native.
"""

import concurrent.futures
import functools

import keras
from keras import ops


def _probe_native_grouped_conv():
    import tensorflow as tf

    try:
        inputs = tf.ones([1, 5, 5, 4])
        kernel = tf.ones([3, 3, 2, 4])
        with tf.GradientTape() as tape:
            tape.watch([inputs, kernel])
            outputs = tf.nn.conv2d(inputs, kernel, 1, "SAME")
        grads = tape.gradient(outputs, [inputs, kernel])
        # d(sum out)/d(kernel) sums the input over each tap's valid positions:
        # (25 + 4*20 + 4*16) positions x 2 inputs per group x 4 outputs.
        return all(g is not None for g in grads) and float(tf.reduce_sum(grads[1])) == 1352.0
    except Exception:  # noqa: BLE001 - any failure means "use the portable form"
        return False


@functools.lru_cache(maxsize=None)
def _tf_native_grouped_conv_trains():
    """Whether TensorFlow's grouped conv and its gradients run here (probed once).

    The probe runs in a fresh thread, which is always eager, so it also works
    when first called while a tf.function is being traced.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_probe_native_grouped_conv).result()


@keras.saving.register_keras_serializable(package="keras_regnet")
class GroupedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D(groups=G)` with a fast path for grouped kernels.

    Same arguments, same kernel shape `(kh, kw, in_channels // G, filters)`,
    same outputs; only the way the convolution is computed differs.
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        backend = keras.backend.backend()
        if backend == "tensorflow" and self.data_format == "channels_last":
            return self._tf_convolution(inputs, kernel)
        if backend in ("tensorflow", "jax"):
            return self._split_convolution(inputs, kernel)
        return super().convolution_op(inputs, kernel)

    def _tf_convolution(self, inputs, kernel):
        import tensorflow as tf

        strides = [1, *self.strides, 1]
        dilations = [1, *self.dilation_rate, 1]
        padding = self.padding.upper()
        in_per_group = kernel.shape[2]
        if in_per_group == 1 and self.filters == self.groups and self.dilation_rate == (1, 1):
            # One channel per group and per output: exactly a depthwise conv.
            depthwise = tf.reshape(kernel, [*kernel.shape[:2], self.filters, 1])
            return tf.nn.depthwise_conv2d(inputs, depthwise, strides, padding)
        if _tf_native_grouped_conv_trains():
            return tf.nn.conv2d(inputs, kernel, strides, padding, dilations=dilations)
        return self._split_convolution(inputs, kernel)

    def _split_convolution(self, inputs, kernel):
        axis = -1 if self.data_format == "channels_last" else 1
        input_groups = ops.split(inputs, self.groups, axis=axis)
        kernel_groups = ops.split(kernel, self.groups, axis=-1)
        outputs = [
            ops.conv(
                x, k,
                strides=list(self.strides),
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            for x, k in zip(input_groups, kernel_groups)
        ]
        return ops.concatenate(outputs, axis=axis)


@keras.saving.register_keras_serializable(package="keras_regnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused TensorFlow op.

    Same arguments, config, weights (gamma, beta, moving_mean,
    moving_variance) and results as Keras' layer. Keras 3 computes batch norm
    as a dozen element-wise ops (moments, then scale and shift, all in float32
    even under `mixed_bfloat16`, with casts around them) and differentiates
    them one by one; on a CPU that is more than half of a RegNet training
    step. On TensorFlow, for 4D channels-last inputs without a mask, renorm or
    synchronization, this layer calls `FusedBatchNormV3` instead (oneDNN's
    fused kernel forward and backward; bfloat16 activations in, float32
    statistics inside), and falls back to Keras' computation otherwise.
    """

    def _fused_call_supported(self, inputs, mask):
        if keras.backend.backend() != "tensorflow" or mask is not None:
            return False
        if self.renorm or self.synchronized or len(inputs.shape) != 4:
            return False
        if self.axis not in (-1, 3) or inputs.shape[-1] is None:
            return False
        return keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16")

    def call(self, inputs, training=None, mask=None):
        if not self._fused_call_supported(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels], tf.float32)
        offset = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset, mean=empty, variance=empty,
                epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
                is_training=True)
            # The op returns the unbiased (Bessel-corrected) batch variance;
            # Keras keeps the biased one in its moving average.
            count = tf.cast(tf.size(inputs) // channels, tf.float32)
            variance = variance * tf.math.maximum(count - 1.0, 0.0) / tf.math.maximum(count, 1.0)
            mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=scale, offset=offset,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
                is_training=False)
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="keras_regnet")
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation (Hu et al.): x * sigmoid(W2 relu(W1 mean(x)) + b).

    Kernels keep the shapes of the 1x1 convolutions of pycls and tf-keras
    (`(1, 1, C, se_filters)` and `(1, 1, se_filters, C)`) so their weights load
    unchanged; the computation is two small matmuls on the pooled vector.
    """

    def __init__(self, se_filters, kernel_initializer="he_normal", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if isinstance(se_filters, bool) or not isinstance(se_filters, int) or se_filters < 1:
            raise ValueError(f"se_filters must be an int >= 1, got {se_filters!r}")
        self.se_filters = se_filters
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("SqueezeExcite needs a known channel dimension")
        self.squeeze_kernel = self.add_weight(
            name="squeeze_kernel", shape=(1, 1, channels, self.se_filters),
            initializer=self.kernel_initializer)
        self.squeeze_bias = self.add_weight(
            name="squeeze_bias", shape=(self.se_filters,), initializer=self.bias_initializer)
        self.excite_kernel = self.add_weight(
            name="excite_kernel", shape=(1, 1, self.se_filters, channels),
            initializer=self.kernel_initializer)
        self.excite_bias = self.add_weight(
            name="excite_bias", shape=(channels,), initializer=self.bias_initializer)

    def call(self, inputs):
        pooled = ops.mean(inputs, axis=(1, 2))
        squeeze = ops.reshape(self.squeeze_kernel, self.squeeze_kernel.shape[2:])
        excite = ops.reshape(self.excite_kernel, self.excite_kernel.shape[2:])
        hidden = ops.relu(ops.matmul(pooled, squeeze) + self.squeeze_bias)
        gate = ops.sigmoid(ops.matmul(hidden, excite) + self.excite_bias)
        return inputs * gate[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "se_filters": self.se_filters,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config


# A trained model's .keras file names keras_regnet's optimizer too; importing the
# layers (the documented step before `keras.saving.load_model`) registers it.
from keras_regnet import optimizers as _optimizers  # noqa: E402, F401
