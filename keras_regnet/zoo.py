"""The model zoo as ONE data table: d2l's RegNetX32 and the 24 tf-keras RegNets.

Each row gives depths, widths and the group width per model, as published by
tf-keras (`applications/regnet.py`, derived from pycls); `get_spec` turns a row
into an `AnyNetSpec`, applying pycls's width/group compatibility step (which
fixes RegNetX080's first stage: width 80 with group width 120 -> one group).
"""

from keras_regnet.specs import AnyNetSpec, StageSpec, make_compatible

# name: (block, stem width, depths, widths, group width, default input shape, classes)
ZOO = {
    "RegNetX32": ("x", 32, (4, 6), (32, 80), 16, (96, 96, 1), 10),
    "RegNetX002": ("x", 32, (1, 1, 4, 7), (24, 56, 152, 368), 8, (224, 224, 3), 1000),
    "RegNetX004": ("x", 32, (1, 2, 7, 12), (32, 64, 160, 384), 16, (224, 224, 3), 1000),
    "RegNetX006": ("x", 32, (1, 3, 5, 7), (48, 96, 240, 528), 24, (224, 224, 3), 1000),
    "RegNetX008": ("x", 32, (1, 3, 7, 5), (64, 128, 288, 672), 16, (224, 224, 3), 1000),
    "RegNetX016": ("x", 32, (2, 4, 10, 2), (72, 168, 408, 912), 24, (224, 224, 3), 1000),
    "RegNetX032": ("x", 32, (2, 6, 15, 2), (96, 192, 432, 1008), 48, (224, 224, 3), 1000),
    "RegNetX040": ("x", 32, (2, 5, 14, 2), (80, 240, 560, 1360), 40, (224, 224, 3), 1000),
    "RegNetX064": ("x", 32, (2, 4, 10, 1), (168, 392, 784, 1624), 56, (224, 224, 3), 1000),
    "RegNetX080": ("x", 32, (2, 5, 15, 1), (80, 240, 720, 1920), 120, (224, 224, 3), 1000),
    "RegNetX120": ("x", 32, (2, 5, 11, 1), (224, 448, 896, 2240), 112, (224, 224, 3), 1000),
    "RegNetX160": ("x", 32, (2, 6, 13, 1), (256, 512, 896, 2048), 128, (224, 224, 3), 1000),
    "RegNetX320": ("x", 32, (2, 7, 13, 1), (336, 672, 1344, 2520), 168, (224, 224, 3), 1000),
    "RegNetY002": ("y", 32, (1, 1, 4, 7), (24, 56, 152, 368), 8, (224, 224, 3), 1000),
    "RegNetY004": ("y", 32, (1, 3, 6, 6), (48, 104, 208, 440), 8, (224, 224, 3), 1000),
    "RegNetY006": ("y", 32, (1, 3, 7, 4), (48, 112, 256, 608), 16, (224, 224, 3), 1000),
    "RegNetY008": ("y", 32, (1, 3, 8, 2), (64, 128, 320, 768), 16, (224, 224, 3), 1000),
    "RegNetY016": ("y", 32, (2, 6, 17, 2), (48, 120, 336, 888), 24, (224, 224, 3), 1000),
    "RegNetY032": ("y", 32, (2, 5, 13, 1), (72, 216, 576, 1512), 24, (224, 224, 3), 1000),
    "RegNetY040": ("y", 32, (2, 6, 12, 2), (128, 192, 512, 1088), 64, (224, 224, 3), 1000),
    "RegNetY064": ("y", 32, (2, 7, 14, 2), (144, 288, 576, 1296), 72, (224, 224, 3), 1000),
    "RegNetY080": ("y", 32, (2, 4, 10, 1), (168, 448, 896, 2016), 56, (224, 224, 3), 1000),
    "RegNetY120": ("y", 32, (2, 5, 11, 1), (224, 448, 896, 2240), 112, (224, 224, 3), 1000),
    "RegNetY160": ("y", 32, (2, 4, 11, 1), (224, 448, 1232, 3024), 112, (224, 224, 3), 1000),
    "RegNetY320": ("y", 32, (2, 5, 12, 1), (232, 696, 1392, 3712), 232, (224, 224, 3), 1000),
}

SE_RATIO = 0.25  # RegNetY: SE width = round(0.25 * block input width)

# The 24 models tf-keras shipped (those with published ImageNet weights).
TF_KERAS_MODELS = tuple(name for name in ZOO if name != "RegNetX32")


def names():
    """All zoo model names."""
    return tuple(ZOO)


def get_spec(name):
    """The AnyNetSpec of a zoo model, e.g. ``get_spec("RegNetY016")``."""
    if name not in ZOO:
        raise ValueError(f"unknown zoo model {name!r}; choose one of: {', '.join(ZOO)}")
    block, stem_width, depths, widths, group_width = ZOO[name][:5]
    se_ratio = SE_RATIO if block == "y" else None
    stages = []
    for depth, width in zip(depths, widths):
        width, g = make_compatible(width, group_width)
        stages.append(StageSpec(depth, width, g, 1.0, 2, se_ratio))
    return AnyNetSpec(stem_width=stem_width, stages=tuple(stages), block=block)


def default_input_shape(name):
    get_spec(name)
    return ZOO[name][5]


def default_classes(name):
    get_spec(name)
    return ZOO[name][6]


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
