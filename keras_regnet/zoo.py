"""The model zoo as ONE data table: d2l's RegNetX32 and the 24 tf-keras RegNets.

Each row gives depths, widths and the group width per model, as published by
tf-keras (`applications/regnet.py`, derived from pycls); `get_spec` turns a row
into an `AnyNetSpec`, applying pycls's width/group compatibility step (which
fixes RegNetX080's first stage: width 80 with group width 120 -> one group).
"""

import typing

from keras_regnet.specs import AnyNetSpec, StageSpec, make_compatible


class ZooEntry(typing.NamedTuple):
    """One zoo model: its architecture, as published, and its defaults."""

    block: str  # "x" or "y"
    stem_width: int
    depths: tuple  # blocks per stage
    widths: tuple  # stage widths before the width/group compatibility step
    group_width: int
    input_shape: tuple  # default (height, width, channels)
    classes: int  # default number of classes
    source: str  # "d2l" or "tf-keras" (the 24 with published ImageNet weights)


def _tf_keras(block, depths, widths, group_width):
    return ZooEntry(block, 32, depths, widths, group_width, (224, 224, 3), 1000, "tf-keras")


ZOO = {
    "RegNetX32": ZooEntry("x", 32, (4, 6), (32, 80), 16, (96, 96, 1), 10, "d2l"),
    "RegNetX002": _tf_keras("x", (1, 1, 4, 7), (24, 56, 152, 368), 8),
    "RegNetX004": _tf_keras("x", (1, 2, 7, 12), (32, 64, 160, 384), 16),
    "RegNetX006": _tf_keras("x", (1, 3, 5, 7), (48, 96, 240, 528), 24),
    "RegNetX008": _tf_keras("x", (1, 3, 7, 5), (64, 128, 288, 672), 16),
    "RegNetX016": _tf_keras("x", (2, 4, 10, 2), (72, 168, 408, 912), 24),
    "RegNetX032": _tf_keras("x", (2, 6, 15, 2), (96, 192, 432, 1008), 48),
    "RegNetX040": _tf_keras("x", (2, 5, 14, 2), (80, 240, 560, 1360), 40),
    "RegNetX064": _tf_keras("x", (2, 4, 10, 1), (168, 392, 784, 1624), 56),
    "RegNetX080": _tf_keras("x", (2, 5, 15, 1), (80, 240, 720, 1920), 120),
    "RegNetX120": _tf_keras("x", (2, 5, 11, 1), (224, 448, 896, 2240), 112),
    "RegNetX160": _tf_keras("x", (2, 6, 13, 1), (256, 512, 896, 2048), 128),
    "RegNetX320": _tf_keras("x", (2, 7, 13, 1), (336, 672, 1344, 2520), 168),
    "RegNetY002": _tf_keras("y", (1, 1, 4, 7), (24, 56, 152, 368), 8),
    "RegNetY004": _tf_keras("y", (1, 3, 6, 6), (48, 104, 208, 440), 8),
    "RegNetY006": _tf_keras("y", (1, 3, 7, 4), (48, 112, 256, 608), 16),
    "RegNetY008": _tf_keras("y", (1, 3, 8, 2), (64, 128, 320, 768), 16),
    "RegNetY016": _tf_keras("y", (2, 6, 17, 2), (48, 120, 336, 888), 24),
    "RegNetY032": _tf_keras("y", (2, 5, 13, 1), (72, 216, 576, 1512), 24),
    "RegNetY040": _tf_keras("y", (2, 6, 12, 2), (128, 192, 512, 1088), 64),
    "RegNetY064": _tf_keras("y", (2, 7, 14, 2), (144, 288, 576, 1296), 72),
    "RegNetY080": _tf_keras("y", (2, 4, 10, 1), (168, 448, 896, 2016), 56),
    "RegNetY120": _tf_keras("y", (2, 5, 11, 1), (224, 448, 896, 2240), 112),
    "RegNetY160": _tf_keras("y", (2, 4, 11, 1), (224, 448, 1232, 3024), 112),
    "RegNetY320": _tf_keras("y", (2, 5, 12, 1), (232, 696, 1392, 3712), 232),
}

SE_RATIO = 0.25  # RegNetY: SE width = round(0.25 * block input width)

# The 24 models tf-keras shipped (those with published ImageNet weights).
TF_KERAS_MODELS = tuple(name for name, entry in ZOO.items() if entry.source == "tf-keras")


def names():
    """All zoo model names."""
    return tuple(ZOO)


def get_entry(name):
    """The `ZooEntry` of a zoo model; ValueError naming the choices for an unknown name."""
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; choose one of: {', '.join(ZOO)}")
    return ZOO[name]


def get_spec(name):
    """The AnyNetSpec of a zoo model, e.g. ``get_spec("RegNetY016")``."""
    row = get_entry(name)
    se_ratio = SE_RATIO if row.block == "y" else None
    stages = []
    for depth, width in zip(row.depths, row.widths):
        width, g = make_compatible(width, row.group_width)
        stages.append(StageSpec(depth, width, g, 1.0, 2, se_ratio))
    return AnyNetSpec(stem_width=row.stem_width, stages=tuple(stages), block=row.block)


def default_input_shape(name):
    return get_entry(name).input_shape


def default_classes(name):
    return get_entry(name).classes


_MAX_SPEC_BYTES = 1 << 20  # a spec is a few hundred bytes


def resolve(model):
    """A zoo name or a path to a spec JSON file -> (name, AnyNetSpec).

    Spec files hold `AnyNetSpec.to_json()` output; the name is the file stem.
    """
    import os

    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a zoo name or a spec .json path, got {model!r}")
    if model in ZOO:
        return model, get_spec(model)
    if model.endswith(".json"):
        try:
            with open(model, "rb") as f:
                raw = f.read(_MAX_SPEC_BYTES + 1)
        except OSError as error:
            raise FileNotFoundError(f"spec file {model!r} cannot be read: {error.strerror}") from None
        if len(raw) > _MAX_SPEC_BYTES:
            raise ValueError(f"spec file {model!r} is over {_MAX_SPEC_BYTES:,} bytes: not an AnyNetSpec JSON")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"spec file {model!r} is not UTF-8 text (byte {error.start})") from None
        name = os.path.splitext(os.path.basename(model))[0]
        try:
            return name, AnyNetSpec.from_json(text)
        except (ValueError, TypeError) as error:
            raise type(error)(f"spec file {model!r}: {error}") from None
    raise ValueError(f"unknown model {model!r}; choose a zoo name ({', '.join(ZOO)}) or a spec .json file")
