"""Tests of keras_regnet.design_spaces (pure Python; fast, offline)."""

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import stats

from keras_regnet import complexity
from keras_regnet import design_spaces as ds
from keras_regnet.specs import AnyNetSpec, StageSpec, make_compatible, regnet_spec

ANYNET = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E")


def ancestors(name):
    out = []
    parent = ds.SPACES[name].parent
    while parent:
        out.append(parent)
        parent = ds.SPACES[parent].parent
    return out


@pytest.fixture(scope="module")
def samples():
    """500 samples (with params) per space, seeded."""
    return {name: ds.get(name).sample_many(np.random.default_rng(7), 500, with_params=True) for name in ds.names()}


# ----------------------------------------------------------------------------
# Module, registry, validation
# ----------------------------------------------------------------------------


def test_import_leaves_tensorflow_and_keras_out():
    code = (
        "import sys, numpy as np, keras_regnet.design_spaces as d\n"
        "d.get('AnyNetX_E', flops=(1e8, 1e9)).sample(np.random.default_rng(0))\n"
        "d.get('RegNet').sample(np.random.default_rng(0))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names_and_registry():
    assert ds.names() == ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")
    assert tuple(ds.SPACES) == ds.names()
    for name in ds.names():
        space = ds.get(name)
        assert isinstance(space, ds.SPACES[name]) and space.name == name
    assert isinstance(ds.get("anynetx_e"), ds.AnyNetX_E)
    assert ancestors("AnyNetX_E") == ["AnyNetX_D", "AnyNetX_C", "AnyNetX_B", "AnyNetX_A"]


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="AnyNetX_A.*RegNet"):
        ds.get("AnyNetX_F")


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("AnyNetX_A", {"widths": (8, 64)}, "'widths'.*valid ones"),
        ("RegNet", {"width": (8, 64)}, "'width'"),
        ("AnyNetX_A", {"depth": (5, 2)}, "depth.*empty"),
        ("AnyNetX_A", {"depth": (0, 4)}, "depth"),
        ("AnyNetX_A", {"depth": (1, 2.5)}, "depth"),
        ("AnyNetX_A", {"width": (8, 1020)}, "width.*multiples"),
        ("AnyNetX_A", {"width": 64}, "width"),
        ("AnyNetX_B", {"bottleneck_ratios": ()}, "bottleneck_ratios"),
        ("AnyNetX_B", {"group_widths": (1, 1, 2)}, "group_widths.*duplicates"),
        ("AnyNetX_B", {"group_widths": (1, 2.5)}, "group_widths"),
        ("AnyNetX_C", {"flops": (5e8, 5e8)}, "flops.*empty"),
        ("AnyNetX_C", {"flops": (5e8, 1e8)}, "flops.*empty"),
        ("AnyNetX_C", {"params": (-1, 1e6)}, "params.*>= 0"),
        ("AnyNetX_C", {"acts": 3}, "acts"),
        ("AnyNetX_D", {"input_shape": (224, 224)}, "input_shape"),
        ("AnyNetX_D", {"classes": -1}, "classes"),
        ("AnyNetX_D", {"max_tries": 0}, "max_tries"),
        ("AnyNetX_E", {"num_stages": 0}, "num_stages"),
        ("RegNet", {"w_m": (1.0, 3.0)}, "w_m"),
        ("RegNet", {"w_a": (8.05, 256.0)}, "w_a.*multiples"),
        ("RegNet", {"w_0": (12, 256)}, "w_0.*multiples"),
        ("RegNet", {"depth": (1, 3)}, "depth.*stages"),
    ],
)
def test_bad_overrides_raise_value_error_naming_them(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        ds.get(name, **overrides)


def test_to_dict_is_json_safe_and_rebuilds(samples):
    for name in ds.names():
        space = ds.get(name, flops=(1e8, None), params=(0, 5e6))
        data = json.loads(json.dumps(space.to_dict()))
        assert data["name"] == name and data["flops"] == [1e8, None]
        rebuilt = ds.get(**data)
        assert rebuilt == space and rebuilt.to_dict() == space.to_dict()
        assert name in space.describe() and "flops" in space.describe()
    assert ds.get("AnyNetX_A").to_dict()["group_widths"] == [1, 2, 4, 8, 16, 32]
    assert ds.get("RegNet").to_dict()["w_m"] == [2.0, 3.0]


# ----------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ds.names())
def test_seeded_reproducibility(name):
    space = ds.get(name)
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    assert space.sample_many(np.random.default_rng(3), 20) == space.sample_many(np.random.default_rng(3), 20)
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    assert [space.sample_with_params(rng1) for _ in range(5)] == [space.sample_with_params(rng2) for _ in range(5)]
    assert len(set(space.sample_many(np.random.default_rng(4), 30))) > 20  # not constant
    # A fresh space object with the same parameters gives the same samples.
    assert ds.get(name).sample(np.random.default_rng(5)) == space.sample(np.random.default_rng(5))


@pytest.mark.parametrize("bad", [None, 0, np.random.RandomState(0), "seed"])
def test_sample_needs_a_generator(bad):
    space = ds.get("AnyNetX_A")
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        space.sample(bad)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        space.sample_many(bad, 3)


def test_sample_many_count():
    space = ds.get("AnyNetX_D")
    assert space.sample_many(np.random.default_rng(0), 0) == []
    specs = space.sample_many(np.random.default_rng(0), 7)
    assert len(specs) == 7 and all(isinstance(s, AnyNetSpec) for s in specs)
    for bad in (-1, 2.5, "3"):
        with pytest.raises(ValueError, match="n must be"):
            space.sample_many(np.random.default_rng(0), bad)


@pytest.mark.parametrize("name", ds.names())
def test_samples_lie_in_the_space_and_its_ancestors(name, samples):
    space = ds.get(name)
    parents = [ds.get(p) for p in ancestors(name)]
    for spec, _ in samples[name]:
        assert space.contains(spec), spec.describe()
        for parent in parents:
            assert parent.contains(spec), (parent.name, spec.describe())
        assert spec.block == "x" and spec.stem_width == 32 and spec.stem_stride == 2
        assert len(spec.stages) == 4
        for stage in spec.stages:
            assert stage.stride == 2 and stage.se_ratio is None
            assert stage.bottleneck_ratio in (1.0, 2.0, 4.0)
            # Every sample builds: the group width divides the bottleneck width.
            assert stage.group_width <= stage.bottleneck_width
            assert stage.bottleneck_width % stage.group_width == 0


def test_anynet_constraints_hold_on_final_values(samples):
    for name in ANYNET:
        space = ds.get(name)
        for spec, _ in samples[name]:
            assert all(1 <= d <= 16 for d in spec.depths)
            assert all(8 <= w <= 1024 and w % 8 == 0 for w in spec.widths)
            if space.share_b:
                assert len({s.bottleneck_ratio for s in spec.stages}) == 1
            if space.monotone_widths:
                assert list(spec.widths) == sorted(spec.widths)
            if space.monotone_depths:
                assert list(spec.depths) == sorted(spec.depths)


def test_parent_samples_violate_child_constraints_sometimes(samples):
    """So the subset tests and the KS tests are not vacuous."""
    pairs = [
        ("AnyNetX_A", "AnyNetX_B"),
        ("AnyNetX_B", "AnyNetX_C"),
        ("AnyNetX_C", "AnyNetX_D"),
        ("AnyNetX_D", "AnyNetX_E"),
    ]
    for parent, child in pairs:
        child_space = ds.get(child)
        inside = [child_space.contains(spec) for spec, _ in samples[parent]]
        assert 0 < sum(inside) < len(inside), (parent, child, sum(inside))
    # A's per-stage g really varies: some A sample has two stages whose g cannot be one shared g.
    assert any(not ds.get("AnyNetX_C").contains(s) for s, _ in samples["AnyNetX_B"])


def test_depth_and_width_are_pycls_log_uniform():
    """pycls's log_uniform(lo, hi, q): P(k*q) proportional to ln(k*q / ((k-1)*q)), first cell from lo - q*."""
    specs = ds.get("AnyNetX_A").sample_many(np.random.default_rng(0), 4000)
    depths = np.array([s.depths for s in specs]).ravel()
    counts = np.bincount(depths, minlength=17)[1:]
    edges = np.array([0.5] + list(range(1, 17)), dtype=float)
    expected = np.diff(np.log(edges)) / math.log(16 / 0.5) * depths.size
    assert stats.chisquare(counts, expected).pvalue > 0.001
    assert set(depths.tolist()) == set(range(1, 17))  # both ends are reached
    # RegNet's recorded values lie on their grids and ranges.
    for _, p in ds.get("RegNet").sample_many(np.random.default_rng(0), 300, with_params=True):
        assert 12 <= p["depth"] <= 28 and 8 <= p["w_0"] <= 256 and p["w_0"] % 8 == 0
        assert 8.0 <= p["w_a"] <= 256.0 and round(p["w_a"], 1) == p["w_a"]
        assert 2.0 <= p["w_m"] <= 3.0 and round(p["w_m"], 3) == p["w_m"]


def _per_stage(specs, attribute):
    return np.array([getattr(s, attribute) for s in specs])


def test_anynetx_d_is_c_conditioned_on_monotone_widths():
    c_space, d_space = ds.get("AnyNetX_C"), ds.get("AnyNetX_D")
    filtered = [s for s in c_space.sample_many(np.random.default_rng(21), 36_000) if d_space.contains(s)]
    assert len(filtered) >= 2000
    filtered = filtered[:2000]
    direct = d_space.sample_many(np.random.default_rng(22), 2000)
    for attribute in ("widths", "depths"):
        a, b = _per_stage(direct, attribute), _per_stage(filtered, attribute)
        for i in range(4):
            p = stats.ks_2samp(a[:, i], b[:, i]).pvalue
            assert p > 0.001, (attribute, i, p)
    g_direct = [s.stages[-1].group_width for s in direct]
    g_filtered = [s.stages[-1].group_width for s in filtered]
    assert stats.ks_2samp(g_direct, g_filtered).pvalue > 0.001
    # The test has power: sorting C's independent draws (which under-weights ties) is caught.
    wrong = []
    for _, p in c_space.sample_many(np.random.default_rng(23), 2000, with_params=True):
        raw = sorted(p[f"width_{i}"] for i in range(1, 5))
        wrong.append([make_compatible(w, p["group_width"], p["bottleneck_ratio"])[0] for w in raw])
    wrong, b = np.array(wrong), _per_stage(filtered, "widths")
    assert min(stats.ks_2samp(wrong[:, i], b[:, i]).pvalue for i in range(4)) < 0.001


def test_anynetx_e_is_d_conditioned_on_monotone_depths():
    d_space, e_space = ds.get("AnyNetX_D"), ds.get("AnyNetX_E")
    filtered = [s for s in d_space.sample_many(np.random.default_rng(31), 28_000) if e_space.contains(s)]
    assert len(filtered) >= 2000
    filtered = filtered[:2000]
    direct = e_space.sample_many(np.random.default_rng(32), 2000)
    for attribute in ("depths", "widths"):
        a, b = _per_stage(direct, attribute), _per_stage(filtered, attribute)
        for i in range(4):
            p = stats.ks_2samp(a[:, i], b[:, i]).pvalue
            assert p > 0.001, (attribute, i, p)
    # Totals too (a joint statistic): total depth and total flops.
    assert stats.ks_2samp([s.depth for s in direct], [s.depth for s in filtered]).pvalue > 0.001
    flops = [[complexity.count(s).flops for s in group] for group in (direct, filtered)]
    assert stats.ks_2samp(*flops).pvalue > 0.001


def test_regnet_samples_regenerate_from_their_parameters(samples):
    for spec, params in samples["RegNet"]:
        assert len(spec.stages) == 4
        assert set(params) == {"depth", "w_0", "w_a", "w_m", "group_width", "bottleneck_ratio"}
        assert spec.depth == params["depth"]
        assert (
            regnet_spec(
                params["w_0"],
                params["w_a"],
                params["w_m"],
                params["depth"],
                params["group_width"],
                params["bottleneck_ratio"],
            )
            == spec
        )
        assert len({s.bottleneck_ratio for s in spec.stages}) == 1
    # The scalar path (used for rows at rounding ties) agrees with the vectorized one.
    space = ds.get("RegNet")
    for spec, params in samples["RegNet"][:100]:
        assert space._generate(params) == (spec, params)


def test_regnet_rejects_draws_without_four_stages():
    space = ds.get("RegNet")
    # depth 12, w_0 8, w_a 8, w_m 3: widths 8..104 span 3 steps only.
    assert (
        space._generate({"depth": 12, "w_0": 8, "w_a": 8.0, "w_m": 3.0, "group_width": 8, "bottleneck_ratio": 1.0})
        is None
    )
    three = ds.get("RegNet", num_stages=3)
    spec = three.sample(np.random.default_rng(0))
    assert len(spec.stages) == 3 and three.contains(spec) and not space.contains(spec)


def test_unsatisfiable_ranges_raise_instead_of_looping():
    # w_a = 0.1 and w_m = 2 on 4 blocks never reach a second width step, let alone 4 stages.
    space = ds.get("RegNet", depth=(4, 4), w_0=(8, 8), w_a=(0.1, 0.1), w_m=(2.0, 2.0), max_tries=10)
    with pytest.raises(ValueError, match="RegNet: no draw satisfied.*unsatisfiable"):
        space.sample(np.random.default_rng(0))


def test_vectorized_compatibility_matches_make_compatible():
    widths = np.arange(1, 1100)
    for b in (1.0, 2.0, 4.0, 0.25, 0.5, 3.0):
        for g in (1, 2, 3, 4, 8, 16, 24, 32, 64):
            w_np, g_np = ds._compatible_np(widths, np.full_like(widths, g), np.full(widths.shape, b))
            expected = [make_compatible(int(w), g, b) for w in widths]
            assert list(zip(w_np.tolist(), g_np.tolist())) == expected, (b, g)


# ----------------------------------------------------------------------------
# Complexity window
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ds.names())
def test_complexity_window_is_respected(name):
    space = ds.get(name, flops=(300e6, 500e6), params=(0, 6e6))
    specs = space.sample_many(np.random.default_rng(1), 40)
    for spec in specs:
        cx = complexity.count(spec, (224, 224, 3), 1000)
        assert 300e6 <= cx.flops <= 500e6 and cx.params <= 6e6
        assert space.contains(spec)
    small = ds.get(name, flops=(5e6, 20e6), input_shape=(32, 32, 3), classes=10)
    for spec in small.sample_many(np.random.default_rng(2), 10):
        assert 5e6 <= complexity.count(spec, (32, 32, 3), 10).flops <= 20e6
    # contains() checks the window too.
    plain = ds.get(name).sample_many(np.random.default_rng(3), 200)
    outside = [s for s in plain if not 300e6 <= complexity.count(s).flops <= 500e6]
    assert outside and not any(space.contains(s) for s in outside)


def test_impossible_window_errors_quickly():
    for name in ("AnyNetX_A", "AnyNetX_E", "RegNet"):
        space = ds.get(name, flops=(1, 2))
        start = time.perf_counter()
        with pytest.raises(ValueError, match=r"flops in \[1, 2\].*unsatisfiable or too narrow.*flops \[") as info:
            space.sample(np.random.default_rng(0))
        assert time.perf_counter() - start < 10
        assert "max_tries=10000" in str(info.value)
    narrow = ds.get("AnyNetX_C", acts=(1e6, 1e6 + 1), max_tries=50)
    with pytest.raises(ValueError, match="acts in .*50 draws"):
        narrow.sample(np.random.default_rng(0))


# ----------------------------------------------------------------------------
# contains(), hyperparameters(), project()
# ----------------------------------------------------------------------------


def _spec(stages, **kwargs):
    return AnyNetSpec(stem_width=kwargs.pop("stem_width", 32), stages=tuple(StageSpec(*s) for s in stages), **kwargs)


def test_contains_rejects_each_violated_constraint():
    good = _spec([(1, 32, 8, 1.0), (2, 64, 8, 1.0), (3, 128, 8, 1.0), (4, 256, 8, 1.0)])
    for name in ANYNET:
        assert ds.get(name).contains(good), name
    e = ds.get("AnyNetX_E")
    cases = {
        "stem width": _spec([(1, 32, 8), (2, 64, 8), (3, 128, 8), (4, 256, 8)], stem_width=16),
        "three stages": _spec([(1, 32, 8), (2, 64, 8), (3, 128, 8)]),
        "depth > 16": _spec([(1, 32, 8), (2, 64, 8), (3, 128, 8), (17, 256, 8)]),
        "width > 1024": _spec([(1, 32, 8), (2, 64, 8), (3, 128, 8), (4, 2048, 8)]),
        "width step": _spec([(1, 36, 4), (2, 64, 8), (3, 128, 8), (4, 256, 8)]),
        "b not a choice": _spec([(1, 48, 8, 3.0), (2, 96, 8, 3.0), (3, 192, 8, 3.0), (4, 384, 8, 3.0)]),
        "g not a fixed point": _spec([(1, 32, 8), (2, 64, 8), (3, 128, 8), (4, 256, 64)]),
        "stride 1": _spec([(1, 32, 8, 1.0, 1), (2, 64, 8), (3, 128, 8), (4, 256, 8)]),
        "block y": _spec(
            [(1, 32, 8, 1.0, 2, 0.25), (2, 64, 8, 1.0, 2, 0.25), (3, 128, 8, 1.0, 2, 0.25), (4, 256, 8, 1.0, 2, 0.25)],
            block="y",
        ),
        "widths decrease": _spec([(1, 64, 8), (2, 32, 8), (3, 128, 8), (4, 256, 8)]),
        "depths decrease": _spec([(2, 32, 8), (1, 64, 8), (3, 128, 8), (4, 256, 8)]),
    }
    for why, spec in cases.items():
        assert not e.contains(spec), why
    assert ds.get("AnyNetX_C").contains(cases["depths decrease"])
    assert ds.get("AnyNetX_C").contains(cases["widths decrease"])  # C has no monotone widths
    mixed_b = _spec([(1, 32, 8, 1.0), (2, 64, 8, 2.0), (3, 128, 8, 1.0), (4, 256, 8, 1.0)])
    assert ds.get("AnyNetX_A").contains(mixed_b) and not ds.get("AnyNetX_B").contains(mixed_b)
    mixed_g = _spec([(1, 32, 8), (2, 64, 16), (3, 128, 8), (4, 256, 8)])
    assert ds.get("AnyNetX_B").contains(mixed_g) and not ds.get("AnyNetX_C").contains(mixed_g)
    # A group width clamped by the compatibility step is a valid shared g: 24 / 4 = 6 < 32.
    clamped = _spec([(1, 24, 6, 4.0), (2, 64, 16, 4.0), (3, 128, 32, 4.0), (4, 256, 32, 4.0)])
    assert e.contains(clamped)
    with pytest.raises(TypeError, match="AnyNetSpec"):
        e.contains({"stages": []})


def test_regnet_contains():
    space = ds.get("RegNet")
    spec = regnet_spec(48, 36.4, 2.5, 16, 16)
    assert len(spec.stages) == 4 and space.contains(spec)
    shallow = regnet_spec(48, 36.4, 2.5, 8, 16)  # total depth 8 < 12
    assert not space.contains(shallow)
    decreasing = _spec([(4, 64, 8), (4, 32, 8), (4, 128, 8), (4, 256, 8)])
    assert not space.contains(decreasing)


def test_hyperparameters_are_flat_plain_and_json_safe(samples):
    for name in ds.names():
        space = ds.get(name)
        spec, params = samples[name][0]
        hp = space.hyperparameters(spec, params)
        assert json.loads(json.dumps(hp)) == hp
        assert all(type(v) in (int, float) for v in hp.values())
        for i, stage in enumerate(spec.stages, 1):
            assert hp[f"depth_{i}"] == stage.depth and hp[f"width_{i}"] == stage.width
            assert hp[f"group_width_{i}"] == stage.group_width
            assert hp[f"bottleneck_ratio_{i}"] == stage.bottleneck_ratio
        if name == "RegNet":
            assert {"w_0", "w_a", "w_m", "depth"} <= set(hp) and hp["depth"] == spec.depth
            assert hp["w_a"] == params["w_a"]
        for key in params:  # every sampled value is a hyperparameter of the space's search space
            assert key in space.search_space()
        assert set(params) == set(space.search_space())


@pytest.mark.parametrize("name", ds.names())
def test_project_gives_back_samples(name, samples):
    space = ds.get(name)
    for spec, params in samples[name][:200]:
        assert space.project(params) == spec


@pytest.mark.parametrize("name", ANYNET)
def test_project_random_proposals_land_inside(name):
    space = ds.get(name)
    rng = np.random.default_rng(5)
    for _ in range(300):
        values = {}
        for i in range(1, 5):
            values[f"depth_{i}"] = float(rng.uniform(-3, 25))
            values[f"width_{i}"] = float(rng.uniform(-50, 1500))
            values[f"bottleneck_ratio_{i}"] = float(rng.uniform(0.3, 6))
            values[f"group_width_{i}"] = float(rng.uniform(0.5, 50))
        values["learning_rate"] = 0.1  # other keys are ignored
        spec = space.project(values)
        assert spec is not None and space.contains(spec)
    # Shared keys win over per-stage ones; a monotone space repairs order by a running maximum.
    values = {
        "depth_1": 3,
        "depth_2": 1,
        "depth_3": 2,
        "depth_4": 5,
        "width_1": 256,
        "width_2": 64,
        "width_3": 512,
        "width_4": 300.2,
        "bottleneck_ratio": 1,
        "group_width": 7,
    }
    if space.share_g:
        spec = space.project(values)
        assert {s.bottleneck_ratio for s in spec.stages} == {1.0}
        assert {s.group_width for s in spec.stages} == {8}
        if space.monotone_widths:
            assert spec.widths == (256, 256, 512, 512)
        if space.monotone_depths:
            assert spec.depths == (3, 3, 3, 5)


def test_project_regnet():
    space = ds.get("RegNet")
    rng = np.random.default_rng(6)
    hits = 0
    for _ in range(300):
        values = {
            "depth": rng.uniform(5, 40),
            "w_0": rng.uniform(0, 400),
            "w_a": rng.uniform(1, 300),
            "w_m": rng.uniform(1.5, 3.5),
            "group_width": rng.uniform(1, 40),
            "bottleneck_ratio": rng.uniform(0.5, 5),
        }
        spec = space.project(values)
        if spec is not None:
            hits += 1
            assert space.contains(spec)
    assert hits > 50
    with pytest.raises(ValueError, match="'w_m'"):
        space.project({"depth": 16, "w_0": 48, "w_a": 36.4, "group_width": 8, "bottleneck_ratio": 1})


def test_project_validates_input():
    space = ds.get("AnyNetX_C")
    with pytest.raises(ValueError, match="'width_3'"):
        space.project(
            {
                "depth_1": 1,
                "depth_2": 1,
                "depth_3": 1,
                "depth_4": 1,
                "width_1": 8,
                "width_2": 8,
                "width_4": 8,
                "bottleneck_ratio": 1,
                "group_width": 1,
            }
        )
    with pytest.raises(ValueError, match="finite"):
        space.project(
            {
                **{f"depth_{i}": 1 for i in range(1, 5)},
                **{f"width_{i}": math.nan for i in range(1, 5)},
                "bottleneck_ratio": 1,
                "group_width": 1,
            }
        )
    with pytest.raises(TypeError):
        space.project([1, 2, 3])


def test_project_returns_none_outside_the_window():
    space = ds.get("AnyNetX_C", flops=(1e9, 2e9))
    tiny = {
        **{f"depth_{i}": 1 for i in range(1, 5)},
        **{f"width_{i}": 8 for i in range(1, 5)},
        "bottleneck_ratio": 1,
        "group_width": 1,
    }
    assert space.project(tiny) is None
    assert ds.get("AnyNetX_C").project(tiny) is not None
