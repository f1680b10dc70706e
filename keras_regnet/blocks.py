"""Functional builders: stem, blocks (X/Y, ResNet bottleneck, VGG, Inception), stage, head.

Each builder takes a tensor and returns a tensor, naming every layer
explicitly so weights can be found and mapped by name:

  {name}_stem_conv | _stem_bn | _stem_relu
  {name}_stage{s}_block{b}_conv_1x1_1 | _conv_1x1_1_bn | _conv_3x3 | _conv_3x3_bn
      | _se | _conv_1x1_2 | _conv_1x1_2_bn | _skip_1x1 | _skip_bn | _add | _out_relu
  {name}_head_gap | {name}_predictions

(stages count from 1, blocks within a stage from 0).
"""

import keras
from keras import layers

from keras_regnet.layers import FusedBatchNormalization, GroupedConv2D, PointwiseConv2D, SqueezeExcite

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
KERNEL_INIT = "he_normal"


def conv_bn(x, filters, kernel_size, name, *, strides=1, groups=1, activation=True, zero_gamma=False):
    """Conv (no bias: BN follows) -> BN (gamma starts at 0 with `zero_gamma`) -> optional ReLU."""
    conv = GroupedConv2D if groups > 1 else PointwiseConv2D if kernel_size == 1 else layers.Conv2D
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        groups=groups,
        use_bias=False,
        kernel_initializer=KERNEL_INIT,
        name=name,
    )(x)
    x = FusedBatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=f"{name}_bn",
    )(x)
    if activation:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def stem(x, width, name, strides=2):
    """3x3 conv with stride 2 (pycls's simple stem), BN, ReLU."""
    x = layers.Conv2D(
        width,
        3,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=KERNEL_INIT,
        name=f"{name}_stem_conv",
    )(x)
    x = FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_stem_bn")(x)
    return layers.ReLU(name=f"{name}_stem_relu")(x)


def bottleneck_block(x, width_in, stage, stride, name, zero_init_last=False):
    """The X block (Y with SE): 1x1 -> grouped 3x3 (stride) -> [SE] -> 1x1, + shortcut.

    Projection shortcut (strided 1x1 conv + BN) iff width or stride changes.
    `zero_init_last` starts the residual branch's last BN gamma at 0, so every
    block starts as its shortcut (Goyal et al. 2017; timm's `zero_init_last`,
    pycls's `BN.ZERO_INIT_FINAL_GAMMA`): deep sampled networks then survive a
    short schedule's peak learning rate instead of blowing up after warm-up.
    """
    if width_in != stage.width or stride != 1:
        shortcut = PointwiseConv2D(
            stage.width,
            1,
            strides=stride,
            use_bias=False,
            kernel_initializer=KERNEL_INIT,
            name=f"{name}_skip_1x1",
        )(x)
        shortcut = FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_skip_bn")(shortcut)
    else:
        shortcut = x
    w_b = stage.bottleneck_width
    y = conv_bn(x, w_b, 1, f"{name}_conv_1x1_1")
    y = conv_bn(y, w_b, 3, f"{name}_conv_3x3", strides=stride, groups=stage.groups)
    if stage.se_ratio:
        y = SqueezeExcite(stage.se_width(width_in), name=f"{name}_se")(y)
    y = conv_bn(y, stage.width, 1, f"{name}_conv_1x1_2", activation=False, zero_gamma=zero_init_last)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out_relu")(y)


def vgg_block(x, width_in, stage, stride, name, zero_init_last=False):
    """The blog's VGG block: 3x3 conv, BN, ReLU, then 2x2 max-pool when striding (no residual branch)."""
    del width_in, zero_init_last
    x = conv_bn(x, stage.width, 3, f"{name}_conv_3x3")
    if stride != 1:
        x = layers.MaxPooling2D(2, strides=stride, padding="same", name=f"{name}_pool")(x)
    return x


def inception_block(x, width_in, stage, stride, name, zero_init_last=False):
    """The blog's Inception block: 1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1 branches.

    Branch widths are 1/4, 1/2, 1/8, 1/8 of the stage width (the blog's split);
    a strided block max-pools its input first (as GoogLeNet does between stages).
    No residual branch, so `zero_init_last` changes nothing.
    """
    del width_in, zero_init_last
    if stride != 1:
        x = layers.MaxPooling2D(3, strides=stride, padding="same", name=f"{name}_downsample")(x)
    c = stage.width
    b1 = conv_bn(x, c // 4, 1, f"{name}_b1_1x1")
    b2 = conv_bn(x, c // 2, 1, f"{name}_b2_1x1")
    b2 = conv_bn(b2, c // 2, 3, f"{name}_b2_3x3")
    b3 = conv_bn(x, c // 2, 1, f"{name}_b3_1x1")
    b3 = conv_bn(b3, c // 8, 5, f"{name}_b3_5x5")
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_b4_pool")(x)
    b4 = conv_bn(b4, c // 8, 1, f"{name}_b4_1x1")
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


# Keyed as `complexity.BLOCK_COUNTERS`, which counts the flops, params and acts of each block
# built here (the counters stay in that module, free of Keras).
BLOCK_BUILDERS = {
    "x": bottleneck_block,
    "y": bottleneck_block,
    "resnet_bottleneck": bottleneck_block,
    "vgg": vgg_block,
    "inception": inception_block,
}


def stage_fn(x, width_in, stage, index, block, name, zero_init_last=False):
    """`stage.depth` blocks; the first carries the stage's stride."""
    builder = BLOCK_BUILDERS[block]
    for b in range(stage.depth):
        stride = stage.stride if b == 0 else 1
        x = builder(x, width_in, stage, stride, f"{name}_stage{index}_block{b}", zero_init_last=zero_init_last)
        width_in = stage.width
    return x


def head(x, classes, activation, name):
    """Global average pooling, then the classifier (activation applied here).

    Under a mixed precision policy the classifier computes in float32, as the
    Keras mixed precision guide advises (softmax and the loss stay exact).
    """
    x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    return layers.Dense(classes, activation=activation, name=f"{name}_predictions", dtype="float32" if mixed else None)(
        x
    )


def body(x, spec, name, zero_init_last=False):
    """Stem and every stage of `spec`."""
    x = stem(x, spec.stem_width, name, strides=spec.stem_stride)
    width_in = spec.stem_width
    for index, stage in enumerate(spec.stages, 1):
        x = stage_fn(x, width_in, stage, index, spec.block, name, zero_init_last=zero_init_last)
        width_in = stage.width
    return x
