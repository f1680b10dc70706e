"""Network specs: what an AnyNet is, as plain frozen data (no TensorFlow).

A spec is everything needed to build or count a network: the stem width and,
per stage, depth, width, group width, bottleneck ratio, stride and SE ratio.
Keeping specs pure Python lets design spaces sample and count 100,000 networks
in milliseconds, and lets a spec travel as JSON (trial records, `--model`).

Conventions (pycls, "Designing Network Design Spaces"):
  * bottleneck_ratio b: the block's inner width is ``width / b`` (b=1: none,
    b=4: a ResNet-style 4x bottleneck, b=0.25: an inverted bottleneck);
  * group_width g: channels per group of the 3x3 conv, so
    ``groups = (width / b) // g``;
  * se_ratio r: SE width = ``round(r * block input width)`` (RegNetY).
"""

import dataclasses
import functools
import itertools
import json

import numpy as np

from keras_regnet.validation import check_choice, check_int, check_number

BLOCKS = ("x", "y", "resnet_bottleneck", "vgg", "inception")
# Bounds far beyond any network in the papers (RegNetY-32GF: widths <= 3,712, 20 blocks a
# stage) that keep an absurd spec from hanging or exhausting memory while it is built.
MAX_WIDTH = 65_536
MAX_DEPTH = 1_000
MAX_STAGES = 64
GROUPED_BLOCKS = ("x", "y", "resnet_bottleneck")


def _check_stride(name, value):
    check_int(name, value, 1, 2)


def _check_positive(name, value):
    check_number(name, value, 0, min_open=True)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage: `depth` blocks of output width `width`; the first has `stride`."""

    depth: int
    width: int
    group_width: int
    bottleneck_ratio: float = 1.0
    stride: int = 2
    se_ratio: float | None = None

    def __post_init__(self):
        check_int("depth", self.depth, 1, MAX_DEPTH)
        check_int("width", self.width, 1, MAX_WIDTH)
        check_int("group_width", self.group_width, 1, MAX_WIDTH)
        _check_positive("bottleneck_ratio", self.bottleneck_ratio)
        _check_stride("stride", self.stride)
        if self.width / self.bottleneck_ratio > MAX_WIDTH:
            raise ValueError(
                f"bottleneck_ratio {self.bottleneck_ratio:g} makes the bottleneck width "
                f"width / bottleneck_ratio = {self.width / self.bottleneck_ratio:g}, above "
                f"{MAX_WIDTH}: bottleneck_ratio must be >= width / {MAX_WIDTH}"
            )
        if self.se_ratio is not None:
            check_number("se_ratio", self.se_ratio, 0, 1, min_open=True)
        # Normalize numeric types so equal specs compare and hash equal.
        object.__setattr__(self, "depth", int(self.depth))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "group_width", int(self.group_width))
        object.__setattr__(self, "bottleneck_ratio", float(self.bottleneck_ratio))
        if self.se_ratio is not None:
            object.__setattr__(self, "se_ratio", float(self.se_ratio))
        inner = self.width / self.bottleneck_ratio
        if abs(inner - round(inner)) > 1e-9 or round(inner) < 1:
            raise ValueError(
                f"width / bottleneck_ratio must be a positive integer (the bottleneck "
                f"width), got {self.width} / {self.bottleneck_ratio} = {inner:g}; "
                "use keras_regnet.specs.make_compatible() to adjust"
            )
        if self.group_width > self.bottleneck_width or self.bottleneck_width % self.group_width:
            raise ValueError(
                f"group_width must divide the bottleneck width {self.bottleneck_width} "
                f"(width {self.width} / bottleneck_ratio {self.bottleneck_ratio:g}), got "
                f"{self.group_width}; use keras_regnet.specs.make_compatible() to adjust"
            )

    @functools.cached_property
    def bottleneck_width(self):
        """Inner width of the block: width / bottleneck_ratio."""
        return int(round(self.width / self.bottleneck_ratio))

    @property
    def groups(self):
        """Number of groups of the 3x3 convolution."""
        return self.bottleneck_width // self.group_width

    def se_width(self, width_in):
        """SE width for a block with `width_in` input channels (0 when SE is off)."""
        return int(round(self.se_ratio * width_in)) if self.se_ratio else 0

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AnyNetSpec:
    """Stem -> stages -> head. `block` picks the block type of every stage."""

    stem_width: int
    stages: tuple
    block: str = "x"
    stem_stride: int = 2

    def __post_init__(self):
        check_int("stem_width", self.stem_width, 1, MAX_WIDTH)
        check_choice("block", self.block, BLOCKS)
        _check_stride("stem_stride", self.stem_stride)
        if isinstance(self.stages, (StageSpec, str, bytes)) or not hasattr(self.stages, "__iter__"):
            raise TypeError("stages must be a sequence of StageSpec (or of tuples/dicts)")
        stages = tuple(_as_stage(s, i) for i, s in enumerate(itertools.islice(self.stages, MAX_STAGES + 1)))
        if not stages:
            raise ValueError("stages must hold at least one stage")
        if len(stages) > MAX_STAGES:
            raise ValueError(f"stages must hold at most {MAX_STAGES} stages")
        if sum(stage.depth for stage in stages) > MAX_DEPTH:
            raise ValueError(
                f"the stages' depths add up to {sum(stage.depth for stage in stages)} blocks; "
                f"at most {MAX_DEPTH} are allowed"
            )
        object.__setattr__(self, "stem_width", int(self.stem_width))
        object.__setattr__(self, "stages", stages)
        for i, stage in enumerate(stages, 1):
            if self.block == "y" and stage.se_ratio is None:
                raise ValueError(f"block 'y' needs se_ratio on every stage; stage {i} has None")
            if self.block != "y" and stage.se_ratio is not None:
                raise ValueError(
                    f"se_ratio is only used by block 'y'; stage {i} of a {self.block!r} "
                    f"network has se_ratio={stage.se_ratio}"
                )
            if self.block == "inception" and stage.width % 8:
                raise ValueError(
                    f"inception blocks split width into 1/4, 1/2, 1/8, 1/8 branches: stage "
                    f"{i} width must be a multiple of 8, got {stage.width}"
                )

    @property
    def depth(self):
        """Total number of blocks."""
        return sum(s.depth for s in self.stages)

    @property
    def widths(self):
        return tuple(s.width for s in self.stages)

    @property
    def depths(self):
        return tuple(s.depth for s in self.stages)

    @property
    def min_input_size(self):
        """Smallest input side that every downsampling step can still halve."""
        return 2 ** ((self.stem_stride == 2) + sum(s.stride == 2 for s in self.stages))

    def block_widths(self):
        """Per-block output widths (the "staircase" of the paper's figures)."""
        return [s.width for s in self.stages for _ in range(s.depth)]

    def to_dict(self):
        return {
            "stem_width": self.stem_width,
            "block": self.block,
            "stem_stride": self.stem_stride,
            "stages": [s.to_dict() for s in self.stages],
        }

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise TypeError(f"an AnyNetSpec dict is expected, got {type(data).__name__}")
        unknown = set(data) - {"stem_width", "block", "stem_stride", "stages"}
        if unknown:
            raise ValueError(f"unknown AnyNetSpec fields: {sorted(unknown)}")
        if "stem_width" not in data or "stages" not in data:
            raise ValueError("an AnyNetSpec dict needs 'stem_width' and 'stages'")
        return cls(
            stem_width=data["stem_width"],
            stages=data["stages"],
            block=data.get("block", "x"),
            stem_stride=data.get("stem_stride", 2),
        )

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a valid AnyNetSpec JSON: {error}") from None
        except RecursionError:
            raise ValueError("not an AnyNetSpec JSON: nested too deeply") from None
        return cls.from_dict(data)

    def describe(self):
        """One line: stem, then depth x width (g group width, b ratio) per stage."""
        parts = [f"stem {self.stem_width}"]
        for s in self.stages:
            extra = f", se {s.se_ratio:g}" if s.se_ratio else ""
            parts.append(f"{s.depth}x{s.width} (g{s.group_width}, b{s.bottleneck_ratio:g}, s{s.stride}{extra})")
        return f"[{self.block}] " + " | ".join(parts)


_STAGE_FIELDS = tuple(field.name for field in dataclasses.fields(StageSpec))
_STAGE_REQUIRED = 3  # depth, width, group_width


def _as_stage(stage, index=0):
    takes = f"a stage takes ({', '.join(_STAGE_FIELDS)}), the first {_STAGE_REQUIRED} required"
    if isinstance(stage, StageSpec):
        return stage
    if isinstance(stage, dict):
        unknown = [key for key in stage if key not in _STAGE_FIELDS]
        if unknown:
            raise ValueError(f"stage {index} has the unknown field {unknown[0]!r}: {takes}")
        missing = [key for key in _STAGE_FIELDS[:_STAGE_REQUIRED] if key not in stage]
        if missing:
            raise ValueError(f"stage {index} lacks {', '.join(missing)}: {takes}")
        return StageSpec(**stage)
    if isinstance(stage, (tuple, list)):
        if len(stage) > len(_STAGE_FIELDS):
            raise ValueError(
                f"stage {index} has {len(stage)} fields {list(stage)!r}: {takes}; "
                f"field {len(_STAGE_FIELDS) + 1} ({stage[len(_STAGE_FIELDS)]!r}) is not one of them"
            )
        if len(stage) < _STAGE_REQUIRED:
            raise ValueError(f"stage {index} has {len(stage)} fields {list(stage)!r}: {takes}")
        return StageSpec(*stage)
    raise TypeError(f"a stage must be a StageSpec, tuple or dict, got {type(stage).__name__}")


def make_compatible(width, group_width, bottleneck_ratio=1.0):
    """pycls's width/group compatibility step for one stage.

    Clamps the group width to the bottleneck width, then rounds the bottleneck
    width to a multiple of the group width and recomputes the stage width.
    Returns ``(width, group_width)``.
    """
    check_int("width", width, 1)
    check_int("group_width", group_width, 1)
    _check_positive("bottleneck_ratio", bottleneck_ratio)
    bot_mul = 1.0 / bottleneck_ratio
    inner = int(max(1, width * bot_mul))
    group_width = int(min(group_width, inner))
    if bot_mul > 1 and abs(bot_mul - round(bot_mul)) < 1e-9:
        multiple = int(np.lcm(group_width, int(round(bot_mul))))
    else:
        multiple = group_width
    inner = max(multiple, int(round(inner / multiple) * multiple))
    width = int(inner / bot_mul)
    return width, group_width


def quantized_widths(w_0, w_a, w_m, depth, q=8):
    """Per-block widths of the quantized linear rule, exactly as pycls's ``generate_regnet``::

        ws_cont = arange(depth) * w_a + w_0
        ks = round(log(ws_cont / w_0) / log(w_m))
        ws = round(w_0 * w_m**ks / q) * q

    with numpy's round-half-to-even. pycls also requires `w_0` to be a multiple
    of `q` (then the first width is `w_0`); here the widths need only come out
    positive. Returns `depth` Python ints (non-decreasing).
    """
    check_number("w_0", w_0, 0, min_open=True)
    check_number("w_a", w_a, 0)
    check_number("w_m", w_m, 1, min_open=True)
    depth = check_int("depth", depth, 1)
    q = check_int("q", q, 1)
    widths = quantized_widths_batch(w_0, w_a, w_m, depth, q)[0].astype(int)
    if widths[0] <= 0:
        raise ValueError(f"w_0={w_0} rounds to width 0 with quantum q={q}; use w_0 >= q/2 (pycls uses a multiple of q)")
    return widths.tolist()


def quantized_widths_batch(w_0, w_a, w_m, depth, q=8, *, tie_tolerance=1e-9):
    """`quantized_widths` over numpy arrays, unchecked: the one implementation of the rule.

    `w_0`, `w_a` and `w_m` broadcast against the block axis j = 0..depth-1:
    scalars give one network, (n, 1) columns give n networks (mask the blocks
    past a shorter network's depth). Returns ``(widths, steps, ties)``, each of
    shape (..., depth): the widths (floats, multiples of q), each block's stage
    index round(ln(u_j / w_0) / ln(w_m)), and where either rounding falls within
    `tie_tolerance` of a half, so that float noise may decide it (a vectorized
    caller then recomputes that network with scalars).
    """
    j = np.arange(depth)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.log((j * w_a + w_0) / w_0) / np.log(w_m)
        steps = np.round(x)
        y = w_0 * np.power(w_m, steps) / q
    ties = (np.abs(x - np.floor(x) - 0.5) < tie_tolerance) | (np.abs(y - np.floor(y) - 0.5) < tie_tolerance)
    return np.round(y) * q, steps, ties


def regnet_spec(w_0, w_a, w_m, depth, group_width, bottleneck_ratio=1.0, se_ratio=None, q=8, *, stem_width=32):
    """The paper's quasi-linear RegNet parameterization -> AnyNetSpec.

    u_j = w_0 + w_a*j; s_j = round(ln(u_j/w_0)/ln(w_m)) (half to even);
    w_j = q*round(w_0*w_m**s_j/q); the distinct w_j become stages with their
    counts as depths; then the width/group compatibility step.
    """
    _check_positive("w_0", w_0)
    check_number("w_a", w_a, 0)
    check_number("w_m", w_m, 1, min_open=True)
    check_int("depth", depth, 1)
    check_int("group_width", group_width, 1)
    check_int("q", q, 1)
    if w_0 % q:
        raise ValueError(f"w_0 must be a multiple of q={q}, got {w_0}")
    if se_ratio is not None:
        _check_positive("se_ratio", se_ratio)
    widths_all = quantized_widths(w_0, w_a, w_m, depth, q)
    widths, depths = np.unique(widths_all, return_counts=True)
    stages = []
    for width, stage_depth in zip(widths.tolist(), depths.tolist()):
        width, g = make_compatible(width, group_width, bottleneck_ratio)
        stages.append(StageSpec(stage_depth, width, g, bottleneck_ratio, 2, se_ratio))
    return AnyNetSpec(stem_width=stem_width, stages=tuple(stages), block="y" if se_ratio else "x")
