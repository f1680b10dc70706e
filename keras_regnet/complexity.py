"""Analytic complexity of a spec: flops (multiply-adds), params and activations.

Pure arithmetic following pycls's conventions, so figures compare with the
paper: a conv counts k*k*c_in*c_out*h*w/groups multiply-adds (+c_out with a
bias) and c_out*h*w activations; BN adds 2C params (gamma, beta) and nothing
else; ReLU, sigmoid, the residual add and the SE multiply are free; the output
size of a conv is (h - 1) // s + 1. Counting needs no TensorFlow.
"""

import dataclasses

from keras_regnet.specs import AnyNetSpec
from keras_regnet.validation import check_input_shape, check_int

# The largest network the builders accept (per image): 30x RegNetY-32GF's params, ~30x its
# flops and activations at 224x224. Beyond them a model would exhaust memory while it is built.
MAX_PARAMS = 4_000_000_000
MAX_FLOPS = 1_000_000_000_000
MAX_ACTS = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class Complexity:
    flops: int  # multiply-adds
    params: int  # trainable parameters (BN: gamma and beta only)
    acts: int  # activations (output elements of convs and linear layers)

    def __str__(self):
        return f"flops {self.flops / 1e6:,.1f} M, params {self.params / 1e6:,.2f} M, acts {self.acts / 1e6:,.2f} M"

    def to_dict(self):
        return dataclasses.asdict(self)


class _Counter:
    """Running (h, w, flops, params, acts) of a block, like pycls's `cx` dict (VGG/Inception)."""

    __slots__ = ("h", "w", "flops", "params", "acts")

    def __init__(self, h, w):
        self.h, self.w, self.flops, self.params, self.acts = h, w, 0, 0, 0

    def conv(self, w_in, w_out, k, stride=1, groups=1, bias=False):
        self.h, self.w = (self.h - 1) // stride + 1, (self.w - 1) // stride + 1
        self.flops += k * k * w_in * w_out * self.h * self.w // groups + (w_out if bias else 0)
        self.params += k * k * w_in * w_out // groups + (w_out if bias else 0)
        self.acts += w_out * self.h * self.w

    def bn(self, width):
        self.params += 2 * width

    def pool(self, width, stride):
        self.h, self.w = (self.h - 1) // stride + 1, (self.w - 1) // stride + 1
        self.acts += width * self.h * self.w


def _bottleneck_block(h, w, w_in, stage, stride):
    """The X block (Y with SE): pycls's terms, inlined (the hot path of design-space sampling)."""
    w_out, w_b, se_ratio = stage.width, stage.bottleneck_width, stage.se_ratio
    groups = w_b // stage.group_width
    h2, w2 = (h - 1) // stride + 1, (w - 1) // stride + 1
    hw, hw2 = h * w, h2 * w2
    flops = w_in * w_b * hw + 9 * w_b * w_b * hw2 // groups + w_b * w_out * hw2
    params = w_in * w_b + 9 * w_b * w_b // groups + w_b * w_out + 4 * w_b + 2 * w_out
    acts = w_b * hw + w_b * hw2 + w_out * hw2
    if w_in != w_out or stride != 1:  # projection shortcut
        flops += w_in * w_out * hw2
        params += w_in * w_out + 2 * w_out
        acts += w_out * hw2
    if se_ratio:
        w_se = int(round(se_ratio * w_in))
        flops += 2 * w_b * w_se + w_se + w_b
        params += 2 * w_b * w_se + w_se + w_b
        acts += w_se + w_b
    return flops, params, acts, h2, w2


def _vgg_block(h, w, w_in, stage, stride):
    """The blog's VGG block: 3x3 conv, BN (ReLU free), then a max-pool when striding."""
    cx = _Counter(h, w)
    cx.conv(w_in, stage.width, 3)
    cx.bn(stage.width)
    if stride != 1:
        cx.pool(stage.width, stride)
    return cx.flops, cx.params, cx.acts, cx.h, cx.w


def _inception_block(h, w, w_in, stage, stride):
    """The blog's Inception block: a max-pool when striding, then four branches (1/4, 1/2, 1/8, 1/8)."""
    cx = _Counter(h, w)
    if stride != 1:
        cx.pool(w_in, stride)
    c = stage.width
    h, w = cx.h, cx.w
    branches = ((c // 4, None, 1), (c // 2, c // 2, 3), (c // 2, c // 8, 5))
    for reduce_width, out_width, k in branches:
        cx.h, cx.w = h, w
        cx.conv(w_in, reduce_width, 1)
        cx.bn(reduce_width)
        if out_width:
            cx.conv(reduce_width, out_width, k)
            cx.bn(out_width)
    cx.h, cx.w = h, w
    cx.pool(w_in, 1)
    cx.conv(w_in, c // 8, 1)
    cx.bn(c // 8)
    return cx.flops, cx.params, cx.acts, cx.h, cx.w


# One counter per block type, keyed as `blocks.BLOCK_BUILDERS` (which imports Keras, so the
# counters live here, pure): counter(h, w, w_in, stage, stride) -> (flops, params, acts, h, w)
# of the one block that builder(x, width_in, stage, stride, name) adds to a model.
BLOCK_COUNTERS = {
    "x": _bottleneck_block,
    "y": _bottleneck_block,
    "resnet_bottleneck": _bottleneck_block,
    "vgg": _vgg_block,
    "inception": _inception_block,
}


def _check_shape(input_shape, min_side):
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and None in input_shape[:2]:
        raise ValueError(
            f"input_shape {tuple(input_shape)!r}: flops and activations depend on the height and "
            "width, so complexity.count needs them (a model may leave them None; its params are "
            "count(spec, (H, W, C)).params for any H and W at least spec.min_input_size)"
        )
    return check_input_shape("input_shape", input_shape, min_side=min_side)


def count(spec, input_shape=(224, 224, 3), classes=1000):
    """Flops (multiply-adds), params and activations of `spec` at `input_shape`.

    `classes=0` counts the network without its classifier (the head's pooling
    has no cost in pycls's convention).
    """
    if not isinstance(spec, AnyNetSpec):
        raise TypeError(f"spec must be an AnyNetSpec, got {type(spec).__name__}")
    h, w, channels = _check_shape(input_shape, spec.min_input_size)
    if type(classes) is not int or classes < 0:  # the plain int skips the check's message formatting
        classes = check_int("classes", classes, 0)
    block = BLOCK_COUNTERS[spec.block]
    w_in, stride = spec.stem_width, spec.stem_stride
    h, w = (h - 1) // stride + 1, (w - 1) // stride + 1  # the stem: 3x3 conv, BN
    flops = 9 * channels * w_in * h * w
    params = 9 * channels * w_in + 2 * w_in
    acts = w_in * h * w
    for stage in spec.stages:
        f, p, a, h, w = block(h, w, w_in, stage, stage.stride)
        flops, params, acts = flops + f, params + p, acts + a
        if stage.depth > 1:  # the other blocks are identical: count one, multiply
            f, p, a, _, _ = block(h, w, stage.width, stage, 1)
            n = stage.depth - 1
            flops, params, acts = flops + f * n, params + p * n, acts + a * n
        w_in = stage.width
    if classes:  # the head: global average pooling (free), then the classifier
        flops += w_in * classes + classes
        params += w_in * classes + classes
        acts += classes
    return Complexity(flops, params, acts)


def check_buildable(spec, input_shape, classes):
    """ValueError unless `spec` at `input_shape` (None sides: its smallest input) is below the ceilings.

    Called by the model builders before any tensor exists, so an absurd spec is
    refused in microseconds instead of hanging or exhausting memory.
    """
    h, w, channels = input_shape
    smallest = spec.min_input_size
    cx = count(spec, (h or smallest, w or smallest, channels), classes)
    for key, ceiling in (("params", MAX_PARAMS), ("flops", MAX_FLOPS), ("acts", MAX_ACTS)):
        value = getattr(cx, key)
        if value > ceiling:
            raise ValueError(
                f"the network is too large to build: {key} {value:,} per image at input "
                f"{tuple(input_shape)!r} with {classes} classes, above the ceiling of {ceiling:,} "
                "(check depth, width, bottleneck_ratio, stem_width and classes)"
            )
    return cx
