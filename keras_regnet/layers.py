"""Keras layers that Keras lacks or runs slowly: GroupedConv2D, PointwiseConv2D, FusedBatchNormalization,
SqueezeExcite.

Both speed layers keep their Keras parent's constructor, config and weights
(files and weights are interchangeable with `keras.layers.Conv2D` and
`keras.layers.BatchNormalization`, across backends) and only change how the
result is computed, picking each backend's fastest correct form on CPU
(figures in bench/README.md):

`GroupedConv2D` (Keras 3 forces XLA for grouped convs on TensorFlow, and
XLA's CPU grouped conv is 30-230x slower than oneDNN's):

  * TensorFlow: one native `tf.nn.conv2d` (oneDNN grouped kernel), or
    `tf.nn.depthwise_conv2d` for one channel per group; without oneDNN
    (AMD processors, TF_ENABLE_ONEDNN_OPTS=0) a depthwise conv with a
    channel multiplier summed within groups for up to 4 channels a group,
    and the split form below for wider groups;
  * JAX: G dense convolutions on channel slices, concatenated (XLA's CPU
    grouped conv, `feature_group_count`, is ~10x slower to train);
  * torch: one `torch.nn.functional.conv2d(groups=G)` on channels_last views
    (Keras' own torch conv copies the input to NCHW and back for every call).

`FusedBatchNormalization` (Keras computes batch norm as a dozen element-wise
ops, differentiated one by one):

  * TensorFlow: one `FusedBatchNormV3` (oneDNN's fused kernel, forward and backward);
  * torch: one `torch.nn.functional.batch_norm` on a channels_last view (ATen's fused kernel);
  * JAX: Keras' own computation (XLA already fuses it; one-pass moments measured no faster).

Both fused forms keep Keras' semantics: the moving variance averages the
biased batch variance (the ops' Bessel correction is undone).
"""

import concurrent.futures
import functools

import keras
from keras import ops

# The parts of a grouped convolution that TensorFlow's native kernel may or may not run on a given build.
NATIVE_PARTS = frozenset({"forward", "input_gradient", "kernel_gradient"})
# A grouped layer of RegNetX32 (stage 2: 80 channels, groups of 16, 12x12), where oneDNN's bf16 kernel
# gradient failed on an AVX2-only AMD CPU ("filter_size does not have enough elements, requested 57600,
# got 11520") while a 4-channel fp32 eager probe passed.
_PROBE_SHAPE = (2, 12, 12, 80)
_PROBE_GROUP_WIDTH = 16


def _probe_native_grouped_parts(dtype):
    """Run each part of the native grouped conv as training runs it (a traced graph, `dtype`, a RegNet
    shape, strides 1 and 2) and keep those that run and agree with the split form in float32."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    x32 = rng.normal(_PROBE_SHAPE)
    k32 = rng.normal([3, 3, _PROBE_GROUP_WIDTH, _PROBE_SHAPE[-1]]) * 0.1
    groups = _PROBE_SHAPE[-1] // _PROBE_GROUP_WIDTH
    tolerance = 1e-3 if dtype in ("float32", "float64") else 5e-2  # relative to the largest value

    def split(x, k, stride):
        pairs = zip(tf.split(x, groups, axis=-1), tf.split(k, groups, axis=-1))
        return tf.concat([tf.nn.conv2d(a, b, stride, "SAME") for a, b in pairs], axis=-1)

    def close(got, want):
        got, want = tf.cast(got, tf.float32), tf.cast(want, tf.float32)
        scale = float(tf.reduce_max(tf.abs(want))) or 1.0
        return got.shape == want.shape and float(tf.reduce_max(tf.abs(got - want))) <= tolerance * scale

    def part_of(form, part, x, k, stride, upstream):
        """One part alone: a failing gradient op must not hide a working forward (graph-time errors)."""
        if part == "forward":
            return form(x, k, stride)
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            loss = tf.reduce_sum(tf.cast(form(x, k, stride), tf.float32) * upstream)
        return tape.gradient(loss, x if part == "input_gradient" else k)

    def native(x, k, stride):
        return tf.nn.conv2d(x, k, stride, "SAME")

    working = set(NATIVE_PARTS)
    for stride in (1, 2):
        upstream = rng.normal(split(x32, k32, stride).shape)
        for part in sorted(working):
            want = part_of(split, part, x32, k32, stride, upstream)
            traced = tf.function(lambda x, k, p=part, s=stride, u=upstream: part_of(native, p, x, k, s, u))
            try:
                if not close(traced(tf.cast(x32, dtype), tf.cast(k32, dtype)), want):
                    working.discard(part)
            except Exception:  # noqa: BLE001 - any failure means "use the package's form for this part"
                working.discard(part)
    return frozenset(working)


@functools.cache
def _native_grouped_parts(dtype="float32"):
    """The parts of a grouped conv that TensorFlow's native kernel runs correctly here for `dtype` (probed once).

    Only with oneDNN does TensorFlow have grouped-conv gradients on CPU; which dtypes work depends on the
    build and the CPU, so each compute dtype is probed the first time a layer uses it. The probe runs in a
    fresh thread, which is always eager, so it also works while a tf.function is being traced.
    """
    import tensorflow as tf

    if not _onednn_enabled():
        return frozenset()  # Eigen: no grouped gradients at all ("not supported on CPU")
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # the probe's dozen small tf.functions would warn about retracing
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(_probe_native_grouped_parts, tf.as_dtype(dtype).name).result()
    finally:
        logger.setLevel(level)


@functools.cache
def _onednn_enabled():
    """Whether this TensorFlow runs oneDNN's kernels (fixed when it loads: TF_ENABLE_ONEDNN_OPTS, the CPU)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


@keras.saving.register_keras_serializable(package="keras_regnet")
class GroupedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D(groups=G)` with a fast path for grouped kernels.

    Same arguments, same kernel shape `(kh, kw, in_channels // G, filters)`,
    same outputs; only the way the convolution is computed differs.
    """

    DEPTHWISE_MAX_GROUP_WIDTH = 4  # input channels a group up to which Eigen's depthwise form wins (bench)

    def convolution_op(self, inputs, kernel):
        if self.groups == 1:
            return super().convolution_op(inputs, kernel)
        backend = keras.backend.backend()
        if backend == "tensorflow" and self.data_format == "channels_last":
            return self._tf_convolution(inputs, kernel)
        if backend == "torch" and self.data_format == "channels_last":
            return self._torch_convolution(inputs, kernel)
        if backend in ("tensorflow", "jax"):
            return self._split_convolution(inputs, kernel)
        return super().convolution_op(inputs, kernel)

    def _torch_convolution(self, inputs, kernel):
        import torch.nn.functional as F

        # NHWC tensor -> NCHW view whose memory is channels_last: no copy, and
        # oneDNN/ATen then run their channels_last kernels.
        x = ops.convert_to_tensor(inputs).permute(0, 3, 1, 2)
        weight = ops.convert_to_tensor(kernel).permute(3, 2, 0, 1)
        padding = (0, 0)
        if self.padding == "same":
            pads = []
            for size, k, s, d in zip(x.shape[2:], weight.shape[2:], self.strides, self.dilation_rate):
                total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
                pads.append((total // 2, total - total // 2))  # TensorFlow's "same": the extra pad after
            if all(before == after for before, after in pads):
                padding = tuple(before for before, _ in pads)
            else:
                (top, bottom), (left, right) = pads
                x = F.pad(x, (left, right, top, bottom))
        outputs = F.conv2d(
            x, weight, stride=self.strides, padding=padding, dilation=self.dilation_rate, groups=self.groups
        )
        return outputs.permute(0, 2, 3, 1)

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
        native = _native_grouped_parts(inputs.dtype.name) if self.dilation_rate == (1, 1) else frozenset()
        if native == NATIVE_PARTS:
            return tf.nn.conv2d(inputs, kernel, strides, padding, dilations=dilations)
        if "forward" in native:  # a gradient the native kernel gets wrong on this build: the package's form
            return self._native_forward_convolution(inputs, kernel, native)
        return self._portable_convolution(inputs, kernel)

    def _portable_convolution(self, inputs, kernel):
        """Without the native kernel: narrow groups as one depthwise conv, wide ones split per group."""
        if kernel.shape[2] <= self.DEPTHWISE_MAX_GROUP_WIDTH and self.dilation_rate == (1, 1):
            return self._depthwise_sum_convolution(inputs, kernel)
        return self._split_convolution(inputs, kernel)

    def _native_forward_convolution(self, inputs, kernel, native):
        """The native kernel forward and for each gradient it computes right; the other gradient from the
        package's form (recomputed in the backward pass: only on builds whose native gradient fails)."""
        import tensorflow as tf

        strides, padding = [1, *self.strides, 1], self.padding.upper()

        @tf.custom_gradient
        def convolution(x, k):
            def gradient(upstream):
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch([x, k])
                    portable = self._portable_convolution(x, k)
                if "input_gradient" in native:  # TensorFlow's own gradient ops of Conv2D
                    dx = tf.raw_ops.Conv2DBackpropInput(
                        input_sizes=tf.shape(x), filter=k, out_backprop=upstream, strides=strides, padding=padding
                    )
                else:
                    dx = tape.gradient(portable, x, output_gradients=upstream)
                if "kernel_gradient" in native:
                    dk = tf.raw_ops.Conv2DBackpropFilter(
                        input=x, filter_sizes=tf.shape(k), out_backprop=upstream, strides=strides, padding=padding
                    )
                else:
                    dk = tape.gradient(portable, k, output_gradients=upstream)
                return dx, dk

            return tf.nn.conv2d(x, k, strides, padding), gradient

        return convolution(tf.convert_to_tensor(inputs), tf.convert_to_tensor(kernel))  # tensors, not variables

    def _depthwise_sum_convolution(self, inputs, kernel):
        """Eigen, narrow groups: one depthwise conv with a channel multiplier, then a sum within each group.

        Output channel (g, o) of a grouped conv is the sum over the group's
        inputs i of input (g, i) convolved with kernel[..., i, (g, o)]. A
        depthwise conv with multiplier `out_per_group` computes every such
        product as its own channel, ordered (g, i, o); a reshape and a sum
        over i give (g, o). Same multiply-adds as the grouped conv, a fixed
        ~10 ops instead of 3 per group: 2-5x faster to train than the split
        form at 2-4 channels a group (bench/README.md, "Grouped convolutions
        without oneDNN").
        """
        import tensorflow as tf

        kh, kw, in_per_group, filters = kernel.shape
        groups, out_per_group = self.groups, filters // self.groups
        depthwise = tf.reshape(
            tf.transpose(tf.reshape(kernel, [kh, kw, in_per_group, groups, out_per_group]), [0, 1, 3, 2, 4]),
            [kh, kw, groups * in_per_group, out_per_group],
        )
        products = tf.nn.depthwise_conv2d(inputs, depthwise, [1, *self.strides, 1], self.padding.upper())
        if in_per_group == 1:
            return products
        static = products.shape[:3]
        leading = static.as_list() if static.is_fully_defined() else tf.unstack(tf.shape(products)[:3])
        grouped = tf.reshape(products, [*leading, groups, in_per_group, out_per_group])
        return tf.reshape(tf.reduce_sum(grouped, axis=4), [*leading, filters])

    def _split_convolution(self, inputs, kernel):
        axis = -1 if self.data_format == "channels_last" else 1
        input_groups = ops.split(inputs, self.groups, axis=axis)
        kernel_groups = ops.split(kernel, self.groups, axis=-1)
        outputs = [
            ops.conv(
                x,
                k,
                strides=list(self.strides),
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            for x, k in zip(input_groups, kernel_groups)
        ]
        return ops.concatenate(outputs, axis=axis)


@keras.saving.register_keras_serializable(package="keras_regnet")
class PointwiseConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose large 1x1 convolutions run as matrix products where TensorFlow
    has no oneDNN.

    Same arguments, config, weights and outputs as Keras' layer. A 1x1
    convolution is a matmul over the pixels (a stride picks every s-th
    pixel first). TensorFlow's Eigen kernels (its CPU default where oneDNN is
    off, e.g. on AMD processors) compute the input gradient of a 1x1
    convolution with a large kernel 2-12x slower than the same matmul: 128 ->
    512 channels at batch 32 and 1x1 pixels cost 7.3 ms against 0.9 ms, most
    of a design-space trial's step when its last stage is wide
    (bench/README.md, "Inside one trial, second round"). Kernels under 128 x 256 (equally
    fast either way), oneDNN builds, other backends and layouts use Keras'
    own convolution.
    """

    MATMUL_MIN_KERNEL = 128 * 256  # in x out channels from which the matmul wins on Eigen (bench)

    def convolution_op(self, inputs, kernel):
        if (
            keras.backend.backend() != "tensorflow"
            or tuple(kernel.shape[:2]) != (1, 1)
            or kernel.shape[2] * kernel.shape[3] < self.MATMUL_MIN_KERNEL
            or _onednn_enabled()  # oneDNN's 1x1 convolutions are fast
            or self.groups != 1
            or self.data_format != "channels_last"
            or tuple(self.dilation_rate) != (1, 1)
        ):
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        if tuple(self.strides) != (1, 1):  # "same" and "valid" agree for a 1x1 kernel: no padding
            inputs = inputs[:, :: self.strides[0], :: self.strides[1], :]
        pixels = tf.reshape(inputs, [-1, kernel.shape[2]])
        outputs = tf.matmul(pixels, tf.reshape(kernel, kernel.shape[2:]))
        if inputs.shape[:3].is_fully_defined():  # a traced training step: no shape ops to build
            return tf.reshape(outputs, [*inputs.shape[:3], kernel.shape[3]])
        return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:3], [kernel.shape[3]]], 0))


@keras.saving.register_keras_serializable(package="keras_regnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused op (TensorFlow, torch).

    Same arguments, config, weights (gamma, beta, moving_mean,
    moving_variance) and results as Keras' layer. Keras 3 computes batch norm
    as a dozen element-wise ops (moments, then scale and shift, all in float32
    even under `mixed_bfloat16`, with casts around them) and differentiates
    them one by one; on a CPU that is more than half of a RegNet training
    step. On TensorFlow, for 4D channels-last inputs without a mask, renorm or
    synchronization, this layer calls `FusedBatchNormV3` instead (oneDNN's
    fused kernel forward and backward; bfloat16 activations in, float32
    statistics inside); on torch, `torch.nn.functional.batch_norm` (ATen's
    fused channels_last kernel). It falls back to Keras' computation
    otherwise, and on JAX, where XLA already fuses Keras' ops.
    """

    def _fused_call_supported(self, inputs, mask):
        if keras.backend.backend() not in ("tensorflow", "torch") or mask is not None:
            return False
        if self.renorm or self.synchronized or len(inputs.shape) != 4:
            return False
        if self.axis not in (-1, 3) or inputs.shape[-1] is None:
            return False
        return keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16")

    def call(self, inputs, training=None, mask=None):
        if not self._fused_call_supported(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        if keras.backend.backend() == "torch":
            return self._torch_call(inputs, training)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels], tf.float32)
        offset = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=scale,
                offset=offset,
                mean=empty,
                variance=empty,
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # The op returns the unbiased (Bessel-corrected) batch variance;
            # Keras keeps the biased one in its moving average.
            if inputs.shape.num_elements() is not None:  # static count: one constant factor
                count = float(inputs.shape.num_elements() // channels)
                variance = variance * (max(count - 1.0, 0.0) / max(count, 1.0))
            else:
                count = tf.cast(tf.size(inputs) // channels, tf.float32)
                variance = variance * tf.math.maximum(count - 1.0, 0.0) / tf.math.maximum(count, 1.0)
            # Keras' moving average, m * old + (1 - m) * batch, as old - (1 - m) * (old - batch): one
            # fused apply kernel on the tf.Variable, 4 graph ops a statistic instead of 8. These
            # updates are outside the gradient; the step traces ~20% fewer ops (bench/README.md,
            # "Fewer ops a step, third round"). Equal to Keras' to float rounding.
            dtype = self.moving_mean.value.dtype.base_dtype  # float32, also under mixed precision
            rate = tf.constant(1.0 - self.momentum, dtype)
            for variable, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
                variable = variable.value
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=variable.handle,
                    alpha=rate,
                    delta=tf.raw_ops.ReadVariableOp(resource=variable.handle, dtype=dtype) - tf.cast(value, dtype),
                )
        else:
            outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=scale,
                offset=offset,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=False,
            )
        return ops.cast(outputs, self.compute_dtype)

    def _torch_call(self, inputs, training):
        import torch
        import torch.nn.functional as F

        x = ops.convert_to_tensor(inputs).permute(0, 3, 1, 2)  # channels_last memory, no copy
        channels = x.shape[1]
        count = x.numel() // channels
        weight = ops.convert_to_tensor(self.gamma) if self.scale else None
        bias = ops.convert_to_tensor(self.beta) if self.center else None
        if training and self.trainable:
            if count < 2:  # torch refuses one value per channel; Keras gives variance 0
                return super().call(inputs, training=training)
            # momentum=1 makes torch write this batch's mean and (unbiased) variance here.
            mean = torch.zeros(channels, dtype=torch.float32, device=x.device)
            variance = torch.zeros(channels, dtype=torch.float32, device=x.device)
            outputs = F.batch_norm(x, mean, variance, weight, bias, training=True, momentum=1.0, eps=self.epsilon)
            variance = variance * ((count - 1) / count)  # Keras averages the biased variance
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs = F.batch_norm(
                x,
                ops.convert_to_tensor(self.moving_mean),
                ops.convert_to_tensor(self.moving_variance),
                weight,
                bias,
                training=False,
                eps=self.epsilon,
            )
        return ops.cast(outputs.permute(0, 2, 3, 1), self.compute_dtype)


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
            name="squeeze_kernel", shape=(1, 1, channels, self.se_filters), initializer=self.kernel_initializer
        )
        self.squeeze_bias = self.add_weight(
            name="squeeze_bias", shape=(self.se_filters,), initializer=self.bias_initializer
        )
        self.excite_kernel = self.add_weight(
            name="excite_kernel", shape=(1, 1, self.se_filters, channels), initializer=self.kernel_initializer
        )
        self.excite_bias = self.add_weight(name="excite_bias", shape=(channels,), initializer=self.bias_initializer)

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
        config.update(
            {
                "se_filters": self.se_filters,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


# A trained model's .keras file names keras_regnet's optimizer too; importing the
# layers (the documented step before `keras.saving.load_model`) registers it.
from keras_regnet import optimizers as _optimizers  # noqa: E402, F401
