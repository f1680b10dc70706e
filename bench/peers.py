"""The peers that bench/throughput.py measures keras_regnet against, as their own code runs them.

* the d2l TensorFlow RegNetX32 (the seed's subclassed `ResNeXtBlock` with
  `keras.layers.Conv2D(groups=...)`) on stock Keras 3;
* the d2l PyTorch RegNetX32, run in a subprocess (`torch_figures`) so that
  TensorFlow and PyTorch never share a process; `TORCH_MODEL` is the d2l code
  itself (bench/profile_step.py reads it from this file).
"""

import importlib.util
import json
import subprocess
import sys

import keras

NUM_CLASSES = 10  # Fashion-MNIST, as in d2l


def d2l_tensorflow_regnetx32():
    """The d2l TensorFlow RegNetX32, as in the seed (tensorflow cells), on Keras 3.

    `ResNeXtBlock` is d2l's (section 8.6): `groups` there is the group *width*,
    the convolution gets `bot_channels // groups` groups.
    """

    class ResNeXtBlock(keras.Model):
        def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
            super().__init__()
            bot_channels = int(round(num_channels * bot_mul))
            self.conv1 = keras.layers.Conv2D(bot_channels, 1, strides=1)
            self.conv2 = keras.layers.Conv2D(
                bot_channels, 3, strides=strides, padding="same", groups=bot_channels // groups
            )
            self.conv3 = keras.layers.Conv2D(num_channels, 1, strides=1)
            self.bn1 = keras.layers.BatchNormalization()
            self.bn2 = keras.layers.BatchNormalization()
            self.bn3 = keras.layers.BatchNormalization()
            if use_1x1conv:
                self.conv4 = keras.layers.Conv2D(num_channels, 1, strides=strides)
                self.bn4 = keras.layers.BatchNormalization()
            else:
                self.conv4 = None
                self.bn4 = None

        def call(self, X):
            Y = keras.activations.relu(self.bn1(self.conv1(X)))
            Y = keras.activations.relu(self.bn2(self.conv2(Y)))
            Y = self.bn3(self.conv3(Y))
            if self.conv4:
                X = self.bn4(self.conv4(X))
            return keras.activations.relu(Y + X)

    def stem(num_channels):
        return keras.models.Sequential(
            [
                keras.layers.Conv2D(num_channels, kernel_size=3, strides=2, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.Activation("relu"),
            ]
        )

    def stage(depth, num_channels, groups, bot_mul):
        net = keras.models.Sequential()
        for i in range(depth):
            if i == 0:
                net.add(ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv=True, strides=2))
            else:
                net.add(ResNeXtBlock(num_channels, groups, bot_mul))
        return net

    stem_channels, groups, bot_mul = 32, 16, 1
    depths, channels = (4, 6), (32, 80)
    arch = ((depths[0], channels[0], groups, bot_mul), (depths[1], channels[1], groups, bot_mul))
    net = keras.models.Sequential([stem(stem_channels)])  # Keras 3 wants a list
    for s in arch:
        net.add(stage(*s))
    net.add(keras.models.Sequential([keras.layers.GlobalAvgPool2D(), keras.layers.Dense(units=NUM_CLASSES)]))
    net.build((None, 96, 96, 1))
    return net


# The d2l PyTorch RegNetX32 (also used by profile_step.py).
TORCH_MODEL = r'''
import json, os, sys, time
import torch
from torch import nn
from torch.nn import functional as F


class ResNeXtBlock(nn.Module):  # d2l section 8.6, pytorch cell
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides, padding=1,
                                   groups=bot_channels // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


def init_cnn(module):  # d2l.init_cnn
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


def regnetx32(num_classes=10):  # d2l AnyNet(arch, stem_channels) with RegNetX32's arguments
    def stage(depth, num_channels, groups, bot_mul):
        blk = []
        for i in range(depth):
            if i == 0:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul, use_1x1conv=True, strides=2))
            else:
                blk.append(ResNeXtBlock(num_channels, groups, bot_mul))
        return nn.Sequential(*blk)

    net = nn.Sequential(nn.Sequential(
        nn.LazyConv2d(32, kernel_size=3, stride=2, padding=1), nn.LazyBatchNorm2d(), nn.ReLU()))
    for i, s in enumerate(((4, 32, 16, 1), (6, 80, 16, 1))):
        net.add_module(f"stage{i+1}", stage(*s))
    net.add_module("head", nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))
    net(torch.zeros(1, 1, 96, 96))
    net.apply(init_cnn)
    return net


def make_train_step(net, x, y, bf16):
    """The usual zero_grad / forward / backward / step loop body, SGD(0.05)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step
'''

TORCH_SCRIPT = (
    TORCH_MODEL
    + r"""
batch, steps, reps = (int(v) for v in sys.argv[1:4])


def measure(channels_last, bf16):
    torch.manual_seed(0)
    net = regnetx32()
    x = torch.rand(batch, 1, 96, 96) * 255
    y = torch.randint(0, 10, (batch,))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    step = make_train_step(net, x, y, bf16)
    net.train()
    for _ in range(2):
        step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    float(loss)
    seconds = time.perf_counter() - start
    train = steps * batch / seconds
    shares.append((time.process_time() - cpu) / seconds / os.cpu_count())
    net.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(2):
            net(x)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(reps):
            net(x)
        seconds = time.perf_counter() - start
        infer = reps * batch / seconds
    shares.append((time.process_time() - cpu) / seconds / os.cpu_count())
    return train, infer


shares = []
results = {"version": torch.__version__, "threads": torch.get_num_threads()}
for key, channels_last, bf16 in (("fp32", False, False), ("fp32_cl", True, False), ("bf16_cl", True, True)):
    results[key] = measure(channels_last, bf16)
results["cpu_shares"] = shares
print("TORCH_RESULTS " + json.dumps(results))
"""
)


def torch_figures(batch, steps, reps):
    """The d2l PyTorch RegNetX32 in a subprocess; None when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        return None, "torch not importable here (pip install torch to include the PyTorch peer)"
    result = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT, str(batch), str(steps), str(reps)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    for line in result.stdout.splitlines():
        if line.startswith("TORCH_RESULTS "):
            return json.loads(line[len("TORCH_RESULTS ") :]), None
    return None, f"torch subprocess failed (rc {result.returncode}): {result.stderr[-500:]}"
