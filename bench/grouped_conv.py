"""RegNetX32 training speed: GroupedConv2D vs stock keras.layers.Conv2D(groups=...).

One run prints both figures and the ratio (issue target: >= 8x on CPU).
Usage: python bench/grouped_conv.py [--batch-size 128] [--steps 5]
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_regnet  # noqa: E402
from keras_regnet import startup  # noqa: E402
from keras_regnet.layers import GroupedConv2D  # noqa: E402


def with_stock_convs(model):
    """The same network with every GroupedConv2D replaced by keras.layers.Conv2D."""

    def clone(layer):
        if isinstance(layer, GroupedConv2D):
            return keras.layers.Conv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    stock = keras.models.clone_model(model, clone_function=clone)
    assert not any(isinstance(l, GroupedConv2D) for l in stock.layers)
    return stock


def train_images_per_second(model, batch_size, steps, warmup):
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 96, 96, 1)).astype("float32")
    y = rng.integers(0, 10, batch_size)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--stock-steps", type=int, default=2, help="stock Keras is slow: fewer steps")
    args = parser.parse_args()
    print(startup.describe_onednn(), time.strftime("%Y-%m-%d"), flush=True)
    ours = keras_regnet.RegNetX32()
    stock = with_stock_convs(ours)
    ours_ips = train_images_per_second(ours, args.batch_size, args.steps, warmup=2)
    stock_ips = train_images_per_second(stock, args.batch_size, args.stock_steps, warmup=1)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"keras {keras.__version__}, backend {keras.backend.backend()}"
    )
    print(f"RegNetX32 96x96x1 batch {args.batch_size}, training (fp32):")
    print(f"  GroupedConv2D (keras_regnet):        {ours_ips:8.1f} img/s")
    print(f"  keras.layers.Conv2D(groups) (stock): {stock_ips:8.1f} img/s")
    print(f"  ratio: {ours_ips / stock_ips:.1f}x (target >= 8x)")


if __name__ == "__main__":
    main()
