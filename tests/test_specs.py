import json
import subprocess
import sys

import pytest

from keras_regnet import specs, zoo
from keras_regnet.specs import AnyNetSpec, StageSpec, make_compatible, regnet_spec

# pycls's dds_baselines parameters (w_0, w_a, w_m, depth, group width, SE ratio).
PYCLS_REGNET_PARAMS = {
    "RegNetX002": (24, 36.44, 2.49, 13, 8, None),
    "RegNetX004": (24, 24.48, 2.54, 22, 16, None),
    "RegNetX006": (48, 36.97, 2.24, 16, 24, None),
    "RegNetX008": (56, 35.73, 2.28, 16, 16, None),
    "RegNetX080": (80, 49.56, 2.88, 23, 120, None),
    "RegNetY002": (24, 36.44, 2.49, 13, 8, 0.25),
    "RegNetY004": (48, 27.89, 2.09, 16, 8, 0.25),
}


def test_specs_do_not_import_tensorflow():
    code = (
        "import sys, keras_regnet, keras_regnet.specs, keras_regnet.zoo, keras_regnet.complexity;"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stage_spec_derived_widths():
    stage = StageSpec(depth=2, width=64, group_width=8, bottleneck_ratio=2)
    assert stage.bottleneck_width == 32 and stage.groups == 4
    assert StageSpec(1, 32, 32, bottleneck_ratio=0.25).bottleneck_width == 128
    assert StageSpec(1, 48, 8, se_ratio=0.25).se_width(24) == 6


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(depth=0, width=32, group_width=8), "depth"),
        (dict(depth=1, width=0, group_width=8), "width"),
        (dict(depth=1, width=32, group_width=0), "group_width"),
        (dict(depth=1, width=36, group_width=8), "group_width"),
        (dict(depth=1, width=32, group_width=64), "group_width"),
        (dict(depth=1, width=30, group_width=1, bottleneck_ratio=4), "bottleneck_ratio"),
        (dict(depth=1, width=32, group_width=8, bottleneck_ratio=0), "bottleneck_ratio"),
        (dict(depth=1, width=32, group_width=8, stride=3), "stride"),
        (dict(depth=1, width=32, group_width=8, se_ratio=1.5), "se_ratio"),
    ],
)
def test_stage_spec_rejects_bad_fields(kwargs, field):
    with pytest.raises(ValueError, match=field):
        StageSpec(**kwargs)


def test_stage_spec_rejects_wrong_types():
    with pytest.raises(TypeError, match="depth"):
        StageSpec(depth=1.5, width=32, group_width=8)
    with pytest.raises(TypeError, match="width"):
        StageSpec(depth=1, width="32", group_width=8)


def test_anynet_spec_validation():
    with pytest.raises(ValueError, match="block"):
        AnyNetSpec(32, [(1, 32, 8)], block="z")
    with pytest.raises(ValueError, match="at least one stage"):
        AnyNetSpec(32, [])
    with pytest.raises(ValueError, match="se_ratio"):
        AnyNetSpec(32, [(1, 32, 8)], block="y")
    with pytest.raises(ValueError, match="se_ratio"):
        AnyNetSpec(32, [StageSpec(1, 32, 8, se_ratio=0.25)], block="x")
    with pytest.raises(ValueError, match="multiple of 8"):
        AnyNetSpec(32, [(1, 36, 4)], block="inception")
    with pytest.raises(TypeError, match="stages"):
        AnyNetSpec(32, StageSpec(1, 32, 8))


def test_specs_are_frozen_hashable_and_json_round_trip():
    spec = zoo.get_spec("RegNetY004")
    with pytest.raises(AttributeError):
        spec.stem_width = 16
    assert len({spec, zoo.get_spec("RegNetY004")}) == 1
    again = AnyNetSpec.from_json(spec.to_json())
    assert again == spec and hash(again) == hash(spec)
    assert json.loads(spec.to_json())["stages"][0]["se_ratio"] == 0.25
    with pytest.raises(ValueError, match="unknown AnyNetSpec fields"):
        AnyNetSpec.from_dict({"stem_width": 32, "stages": [], "depth": 3})
    with pytest.raises(ValueError, match="JSON"):
        AnyNetSpec.from_json("{not json")


def test_make_compatible_follows_pycls():
    assert make_compatible(80, 120) == (80, 80)  # group width clamped (RegNetX080 stage 1)
    assert make_compatible(100, 16) == (96, 16)  # bottleneck width rounded to a multiple
    assert make_compatible(64, 8, 4) == (64, 8)  # 16 inner channels, 2 groups
    assert make_compatible(72, 16, 4) == (64, 16)  # inner 18 -> 16
    assert make_compatible(8, 16, 2) == (8, 4)  # group width clamped to inner width 4
    width, group_width = make_compatible(40, 8, 0.25)  # inverted bottleneck
    StageSpec(1, width, group_width, 0.25)


@pytest.mark.parametrize("name", sorted(PYCLS_REGNET_PARAMS))
def test_regnet_spec_regenerates_zoo_models(name):
    w_0, w_a, w_m, depth, group_width, se_ratio = PYCLS_REGNET_PARAMS[name]
    assert regnet_spec(w_0, w_a, w_m, depth, group_width, se_ratio=se_ratio) == zoo.get_spec(name)


def test_regnet_spec_quantized_linear_rule():
    # u_j = 24 + 36.44 j, quantized to powers of 2.49 times 24, multiples of 8
    assert specs.quantized_widths(24, 36.44, 2.49, 13) == [24, 56] + [152] * 4 + [368] * 7
    spec = regnet_spec(24, 36.44, 2.49, 13, 8)
    assert spec.depths == (1, 1, 4, 7) and spec.depth == 13
    # round half to even: ln(u/w0)/ln(w_m) = 0.5 exactly for u = w0 * sqrt(w_m) -> 0
    assert specs.quantized_widths(16, 16, 4.0, 2) == [16, 16]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(w_0=20, w_a=10, w_m=2, depth=10, group_width=8), "w_0"),
        (dict(w_0=24, w_a=-1, w_m=2, depth=10, group_width=8), "w_a"),
        (dict(w_0=24, w_a=10, w_m=1, depth=10, group_width=8), "w_m"),
        (dict(w_0=24, w_a=10, w_m=2, depth=0, group_width=8), "depth"),
    ],
)
def test_regnet_spec_rejects_bad_parameters(kwargs, field):
    with pytest.raises(ValueError, match=field):
        regnet_spec(**kwargs)


def test_zoo_table():
    assert len(zoo.TF_KERAS_MODELS) == 24
    assert zoo.get_spec("RegNetX32") == AnyNetSpec(32, [(4, 32, 16), (6, 80, 16)])
    assert zoo.default_input_shape("RegNetX32") == (96, 96, 1)
    x080 = zoo.get_spec("RegNetX080")
    assert x080.stages[0].groups == 1 and x080.stages[1].groups == 2
    assert all(s.se_ratio == 0.25 for s in zoo.get_spec("RegNetY320").stages)
    with pytest.raises(ValueError, match="RegNetX002"):
        zoo.get_spec("RegNetX003")


def test_resolve_spec_file(tmp_path):
    path = tmp_path / "tiny.json"
    spec = AnyNetSpec(16, [(1, 16, 8), (1, 32, 8)])
    path.write_text(spec.to_json())
    assert zoo.resolve(str(path)) == ("tiny", spec)
    assert zoo.resolve("RegNetY002")[1] == zoo.get_spec("RegNetY002")
    with pytest.raises(FileNotFoundError):
        zoo.resolve(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="unknown model"):
        zoo.resolve("ResNet50")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(depth=1, width=16, group_width=8, stride=2.0), "stride"),
        (dict(depth=1, width=16, group_width=8, bottleneck_ratio=1e-6), "bottleneck_ratio"),
        (dict(depth=10**30, width=16, group_width=8), "depth"),
        (dict(depth=1e30, width=16, group_width=8), "depth"),
        (dict(depth=1, width=2**40, group_width=8), "width"),
        (dict(depth=2.0, width=16, group_width=8), "depth"),
    ],
)
def test_absurd_stage_values_are_refused_at_once(kwargs, field):
    import time

    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError), match=field):
        StageSpec(**kwargs)
    assert time.perf_counter() - start < 0.5


def test_absurd_network_values_are_refused_at_once():
    with pytest.raises(TypeError, match="stem_stride"):
        AnyNetSpec(8, [(1, 16, 8)], stem_stride=2.0)
    with pytest.raises(ValueError, match="stem_width"):
        AnyNetSpec(10**6, [(1, 16, 8)])
    with pytest.raises(ValueError, match="blocks"):
        AnyNetSpec(8, [(800, 16, 8), (800, 16, 8)])
    with pytest.raises(ValueError, match="nested too deeply"):
        AnyNetSpec.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="depth"):
        AnyNetSpec.from_json(
            '{"stem_width": 8, "stages": [{"depth": 1000000000000000000000000000000, "width": 16, "group_width": 8}]}'
        )


def test_complexity_ceiling_and_input_size_agree_with_the_builder():
    from keras_regnet import complexity

    spec = AnyNetSpec(8, [(1, 16, 8), (1, 32, 8)])
    with pytest.raises(ValueError, match=">= 8"):
        complexity.count(spec, (4, 4, 3), 10)  # the builder refuses inputs below the downsampling too
    with pytest.raises(ValueError, match="params .* above the ceiling"):
        complexity.check_buildable(spec, (32, 32, 3), 10**9)
    wide = AnyNetSpec(65_536, [(1, 65_536, 65_536)])
    with pytest.raises(ValueError, match="too large to build"):
        complexity.check_buildable(wide, (224, 224, 3), 10)
    assert complexity.check_buildable(spec, (None, None, 3), 0).params == complexity.count(spec, (8, 8, 3), 0).params
    with pytest.raises(ValueError, match="depend on the height and width"):
        complexity.count(spec, (None, None, 3), 0)


def test_a_stage_with_too_many_or_unknown_fields_names_the_stage_fields_and_the_odd_one():
    fields = "(depth, width, group_width, bottleneck_ratio, stride, se_ratio)"
    with pytest.raises(ValueError) as info:
        AnyNetSpec(8, [(1, 16, 8), (1, 32, 8, 1, 2, None, 0.5, 9)])
    message = str(info.value)
    assert message.startswith("stage 1 has 8 fields") and fields in message and "field 7 (0.5)" in message
    with pytest.raises(ValueError, match=r"stage 0 has the unknown field 'groups'.*group_width"):
        AnyNetSpec(8, [{"depth": 1, "width": 16, "groups": 8}])
    with pytest.raises(ValueError, match=r"stage 0 lacks group_width"):
        AnyNetSpec(8, [{"depth": 1, "width": 16}])
