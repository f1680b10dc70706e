"""GroupedConv2D's two forms where TensorFlow has no oneDNN (AMD CPUs): split convs vs depthwise + group sum.

For the grouped 3x3 convolutions of design-space study networks (batch 32, 32x32
digits: 16x16 down to 1x1 pixels, 2-32 channels a group), one thread: ms for the
forward and backward pass (input and kernel gradients) in a `tf.function`, and
the ops of that graph (tracing costs about 0.9 ms an op, once per network).
Prints which form `GroupedConv2D` takes for each shape.

    python bench/grouped_forms.py [--reps 30]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_regnet import startup  # noqa: E402
from keras_regnet.layers import GroupedConv2D  # noqa: E402

# (output pixels per side, channels, channels a group, stride)
SHAPES = [
    (8, 16, 2, 1),
    (8, 32, 2, 2),
    (4, 80, 2, 2),
    (1, 184, 2, 1),
    (4, 64, 4, 1),
    (2, 192, 4, 1),
    (8, 48, 8, 1),
    (8, 128, 8, 1),
    (1, 256, 8, 1),
    (4, 128, 16, 1),
    (2, 432, 16, 1),
    (2, 256, 32, 1),
]


def time_form(form, x, kernel, reps):
    @tf.function
    def step(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = form(x, kernel)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, kernel])

    ops = len(step.get_concrete_function(x, kernel).graph.get_operations())
    step(x, kernel)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            grads = step(x, kernel)
        grads[0].numpy()
        best = min(best, (time.perf_counter() - start) / reps * 1e3)
    return best, ops, step(x, kernel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, tensorflow {tf.__version__}, one thread, batch 32")
    print(startup.describe_onednn(), time.strftime("%Y-%m-%d"))
    print("| pixels | channels | a group | groups | stride | split ms (ops) | depthwise + sum ms (ops) | taken |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    rng = np.random.default_rng(0)
    for pixels, channels, width, stride in SHAPES:
        groups = channels // width
        layer = GroupedConv2D(channels, 3, strides=stride, padding="same", groups=groups, use_bias=False)
        size = pixels * stride
        x = tf.constant(rng.normal(size=(32, size, size, channels)).astype("float32"))
        layer.build(x.shape)
        kernel = tf.constant(rng.normal(size=layer.kernel.shape).astype("float32"))
        split_ms, split_ops, split_grads = time_form(layer._split_convolution, x, kernel, args.reps)
        dw_ms, dw_ops, dw_grads = time_form(layer._depthwise_sum_convolution, x, kernel, args.reps)
        for a, b in zip(split_grads, dw_grads):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3 * float(tf.reduce_max(tf.abs(a))))
        taken = "depthwise + sum" if width <= GroupedConv2D.DEPTHWISE_MAX_GROUP_WIDTH else "split"
        print(
            f"| {pixels}x{pixels} | {channels} | {width} | {groups} | {stride} | {split_ms:.2f} ({split_ops}) "
            f"| {dw_ms:.2f} ({dw_ops}) | {taken} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
