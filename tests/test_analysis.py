"""Tests for keras_regnet.analysis (pure numpy/scipy/matplotlib; fast, offline)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from keras_regnet import analysis as an
from keras_regnet import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG_SIGNATURE
    # IHDR chunk: width and height are positive big-endian ints
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


# --------------------------------------------------------------------------- EDF


def test_edf_strict_inequality_with_ties():
    errors = [3.0, 1.0, 2.0, 2.0]
    # F(e) = (1/n) sum 1[e_i < e]
    at = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0001, 10.0]
    expected = [0.0, 0.0, 0.25, 0.25, 0.75, 0.75, 1.0, 1.0]
    np.testing.assert_allclose(an.edf(errors, at=at), expected)


def test_edf_scalar_point_returns_float():
    value = an.edf([1.0, 2.0, 3.0, 4.0], at=3.0)
    assert isinstance(value, float)
    assert value == 0.5
    assert an.edf([1.0, 2.0], at=np.float64(2.5)) == 1.0


def test_edf_step_points():
    curve = an.edf([3.0, 1.0, 2.0, 2.0])
    xs, ys = curve  # unpacks like a tuple
    np.testing.assert_array_equal(xs, [1.0, 2.0, 3.0])
    # fraction of errors <= x, i.e. F just to the right of each jump
    np.testing.assert_allclose(ys, [0.25, 0.75, 1.0])
    assert isinstance(curve, an.EDFCurve)
    # F at a jump point (strict) is the previous step value
    np.testing.assert_allclose(an.edf([3.0, 1.0, 2.0, 2.0], at=xs), [0.0, 0.25, 0.75])


def test_edf_empty_at_and_monotone():
    assert an.edf([1.0], at=[]).shape == (0,)
    rng = np.random.default_rng(0)
    errors = rng.normal(size=200)
    grid = np.linspace(-4, 4, 101)
    values = an.edf(errors, at=grid)
    assert np.all(np.diff(values) >= 0)
    assert values[0] == 0.0 and values[-1] == 1.0


# --------------------------------------------------------- normalized EDF / weights


def test_complexity_weights_hand_computed_log_bins():
    # log10 range [0, 3] split in 3 bins: [1,10), [10,100), [100,1000]
    complexity = [1, 2, 3, 50, 1000]
    w = an.complexity_weights(complexity, bins=3)
    # bin sizes 3, 1, 1 -> K' = 3 -> 1/9, 1/9, 1/9, 1/3, 1/3
    np.testing.assert_allclose(w, [1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 3])
    assert math.isclose(w.sum(), 1.0)


def test_complexity_weights_empty_bin_dropped():
    # log bins over [1, 10000], 4 bins: [1,10), [10,100), [100,1000), [1000,10000]
    complexity = [1, 2, 5000, 10000, 9000, 1.5]
    w = an.complexity_weights(complexity, bins=4)
    # bins 0 (3 models) and 3 (3 models) non-empty; K' = 2 -> 1/6 each
    np.testing.assert_allclose(w, np.full(6, 1 / 6))
    w_lin = an.complexity_weights([1, 2, 3, 10], bins=3, log_bins=False)
    # linear bins over [1, 10]: [1,4), [4,7), [7,10] -> counts 3, 0, 1 -> K' = 2
    np.testing.assert_allclose(w_lin, [1 / 6, 1 / 6, 1 / 6, 1 / 2])


def test_complexity_weights_sum_to_one_and_single_value():
    rng = np.random.default_rng(1)
    flops = np.exp(rng.uniform(np.log(1e8), np.log(1e10), size=137))
    for bins in (1, 3, 10, 50):
        assert math.isclose(an.complexity_weights(flops, bins=bins).sum(), 1.0)
    np.testing.assert_allclose(an.complexity_weights([5.0, 5.0, 5.0], bins=4), [1 / 3] * 3)
    np.testing.assert_allclose(an.complexity_weights(flops, bins=1), np.full(137, 1 / 137))


def test_complexity_range_shared_across_spaces():
    # With a common range, [1, 2] falls in one of 2 bins: plain weights.
    w = an.complexity_weights([1.0, 2.0], bins=2, complexity_range=(1.0, 100.0))
    np.testing.assert_allclose(w, [0.5, 0.5])
    with pytest.raises(ValueError, match="complexity_range"):
        an.complexity_weights([1.0, 200.0], bins=2, complexity_range=(1.0, 100.0))


def test_normalized_edf_hand_computed():
    errors = [10.0, 20.0, 30.0, 40.0, 50.0]
    complexity = [1, 2, 3, 50, 1000]  # weights 1/9, 1/9, 1/9, 1/3, 1/3 (see above)
    at = [10.0, 15.0, 35.0, 45.0, 50.0, 51.0]
    expected = [0.0, 1 / 9, 3 / 9, 3 / 9 + 1 / 3, 3 / 9 + 1 / 3, 1.0]
    np.testing.assert_allclose(an.normalized_edf(errors, complexity, bins=3, at=at), expected)
    curve = an.normalized_edf(errors, complexity, bins=3)
    np.testing.assert_allclose(curve.fractions, [1 / 9, 2 / 9, 3 / 9, 3 / 9 + 1 / 3, 1.0])


def test_normalized_edf_equal_bins_equals_plain_edf():
    rng = np.random.default_rng(2)
    errors = rng.uniform(30, 60, size=40)
    # 4 log bins over [1, 1e4], 10 models in each
    complexity = np.repeat([1.0, 20.0, 300.0, 1e4], 10)
    grid = np.linspace(29, 61, 57)
    np.testing.assert_allclose(an.normalized_edf(errors, complexity, bins=4, at=grid), an.edf(errors, at=grid))
    a, b = an.normalized_edf(errors, complexity, bins=4), an.edf(errors)
    np.testing.assert_allclose(a.errors, b.errors)
    np.testing.assert_allclose(a.fractions, b.fractions)


def test_normalized_edf_removes_complexity_bias():
    # Space B samples mostly big (low-error) models; per-complexity quality equals A's.
    rng = np.random.default_rng(3)

    def space(n_small, n_big):
        c = np.concatenate([np.full(n_small, 1e8), np.full(n_big, 1e9)])
        e = np.where(c > 5e8, 30.0, 40.0) + rng.uniform(0, 1, size=c.size)
        return e, c

    ea, ca = space(80, 20)
    eb, cb = space(20, 80)
    rng_c = (1e8, 1e9)
    plain_gap = abs(an.edf(ea, at=35.0) - an.edf(eb, at=35.0))
    norm_gap = abs(
        an.normalized_edf(ea, ca, bins=2, at=35.0, complexity_range=rng_c)
        - an.normalized_edf(eb, cb, bins=2, at=35.0, complexity_range=rng_c)
    )
    assert plain_gap == pytest.approx(0.6)
    assert norm_gap == pytest.approx(0.0)


# ----------------------------------------------------------------------- KS test


def test_ks_test_matches_scipy():
    rng = np.random.default_rng(4)
    a = rng.normal(0.0, 1.0, size=150)
    b = rng.normal(0.4, 1.0, size=90)
    res = an.ks_test(a, b)
    ref = stats.ks_2samp(a, b)
    assert res.statistic == pytest.approx(ref.statistic, abs=1e-15)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    statistic, pvalue = res
    assert isinstance(statistic, float) and isinstance(pvalue, float)
    # KS statistic is the sup distance between the two EDFs
    grid = np.concatenate([a, b, [10.0]])
    gap = np.max(np.abs(an.edf(a, at=grid) - an.edf(b, at=grid)))
    assert statistic == pytest.approx(gap)
    same = an.ks_test(a, a)
    assert same.statistic == 0.0 and same.pvalue == 1.0


# -------------------------------------------------------------------- good range


def _synthetic_good_range_data(seed=5, n=400):
    rng = np.random.default_rng(seed)
    values = rng.choice([1.0, 2.0, 4.0, 8.0], size=n)
    errors = rng.uniform(40, 60, size=n)
    errors[values == 4.0] -= 20.0  # every model at value 4 beats every other
    return values, errors


def test_good_range_contains_best_value_and_is_narrow():
    values, errors = _synthetic_good_range_data()
    r = an.good_range(values, errors, n_boot=2000)
    assert isinstance(r, an.GoodRange)
    assert r.low == r.median == r.high == 4.0
    assert 4.0 in r and 2.0 not in r
    assert r.width == 0.0
    assert r.as_dict() == {"low": 4.0, "median": 4.0, "high": 4.0}


def test_good_range_continuous_parameter():
    rng = np.random.default_rng(6)
    values = rng.uniform(0, 10, size=500)
    errors = (values - 3.0) ** 2 + rng.normal(0, 0.5, size=500)
    r = an.good_range(values, errors, n_boot=1000, seed=1)
    assert r.low <= 3.0 <= r.high
    assert r.width < 2.0
    assert r.low <= r.median <= r.high


def test_good_range_reproducible_by_seed():
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 10, size=300)
    errors = np.abs(values - 5) + rng.normal(0, 2, size=300)
    r1 = an.good_range(values, errors, n_boot=500, seed=123)
    r2 = an.good_range(values, errors, n_boot=500, seed=123)
    r3 = an.good_range(values, errors, n_boot=500, seed=124)
    assert r1 == r2
    assert (r1.low, r1.median, r1.high) != (r3.low, r3.median, r3.high)


def test_good_range_bootstrap_definition():
    # Recompute one resample by hand with the same generator stream.
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    errors = np.array([5.0, 3.0, 8.0, 1.0, 9.0, 2.0, 7.0, 4.0])
    r = an.good_range(values, errors, fraction=0.25, n_boot=1, seed=42)
    idx = np.random.default_rng(42).integers(0, 8, size=(1, 2))[0]
    expected = values[idx[np.argmin(errors[idx])]]
    assert r.low == r.median == r.high == expected
    # fraction=1 over many resamples almost surely includes the global best
    r_all = an.good_range(values, errors, fraction=1.0, n_boot=200)
    assert r_all.median == 4.0


# ------------------------------------------------------------- RegNet widths fit


def test_quantized_widths_matches_pycls_formula():
    # RegNetX-200MF: w_0=24, w_a=36.44, w_m=2.49, d=13 -> stages 24, 56, 152, 368
    ws = an.quantized_widths(24, 36.44, 2.49, 13)
    assert ws == [24, 56, 152, 152, 152, 152, 368, 368, 368, 368, 368, 368, 368]
    assert all(type(w) is int for w in ws)
    # reference implementation, straight from pycls generate_regnet
    for w_0, w_a, w_m, d in [(48, 27.89, 2.09, 16), (96, 38.65, 2.43, 23), (8, 0.0, 2.0, 4)]:
        ws_cont = np.arange(d) * w_a + w_0
        ks = np.round(np.log(ws_cont / w_0) / np.log(w_m))
        ref = np.round(np.divide(w_0 * np.power(w_m, ks), 8)).astype(int) * 8
        assert an.quantized_widths(w_0, w_a, w_m, d) == ref.tolist()
    # round half to even: 12/8 = 1.5 -> 2 -> 16; 20/8 = 2.5 -> 2 -> 16
    assert an.quantized_widths(12, 0, 2, 1) == [16]
    assert an.quantized_widths(20, 0, 2, 1) == [16]
    assert an.quantized_widths(20, 0, 2, 2, q=4) == [20, 20]


@pytest.mark.parametrize(
    "params",
    [
        (24, 36.44, 2.49, 13),  # RegNetX-200MF
        (48, 27.89, 2.09, 16),  # RegNetY-400MF
        (88, 26.31, 2.25, 25),  # RegNetX-3.2GF
        (48, 20.71, 2.65, 27),  # RegNetY-1.6GF
        (232, 115.89, 2.53, 20),  # RegNetY-32GF
        (16, 4.0, 1.8, 30),
    ],
)
def test_fit_regnet_recovers_generated_widths(params):
    w_0, w_a, w_m, d = params
    widths = an.quantized_widths(w_0, w_a, w_m, d)
    fit = an.fit_regnet(widths)
    assert isinstance(fit, an.RegNetFit)
    assert all(type(v) is float for v in fit)
    assert fit.fit_error == pytest.approx(0.0, abs=1e-12)
    assert an.quantized_widths(fit.w_0, fit.w_a, fit.w_m, d) == widths
    assert fit.w_0 == w_0  # the first block's width is w_0 exactly
    assert 1.5 <= fit.w_m <= 3.0 and 0 < fit.w_a <= 256


def test_fit_regnet_deep_net_and_inexact_fit():
    widths = an.quantized_widths(56, 35.73, 2.28, 30)
    fit = an.fit_regnet(widths)
    assert an.quantized_widths(fit.w_0, fit.w_a, fit.w_m, 30) == widths
    assert fit.fit_error == pytest.approx(0.0, abs=1e-12)
    # d2l RegNetX32 (4 x 32, 6 x 80) and a non-monotone net: small but positive error
    d2l = an.fit_regnet([32] * 4 + [80] * 6)
    assert 0.0 <= d2l.fit_error < 0.1
    assert an.quantized_widths(d2l.w_0, d2l.w_a, d2l.w_m, 10)[0] == 32
    bumpy = [64, 32, 128, 16, 256, 64]
    fit_b = an.fit_regnet(bumpy)
    assert fit_b.fit_error > 0.1
    fitted = an.quantized_widths(fit_b.w_0, fit_b.w_a, fit_b.w_m, len(bumpy))
    expected = np.mean(np.abs(np.log(bumpy) - np.log(fitted)))
    assert fit_b.fit_error == pytest.approx(expected)


def test_fit_regnet_wider_w0_range():
    widths = an.quantized_widths(320, 69.86, 2.0, 23)  # RegNetX-32GF, w_0 > 256
    assert an.fit_regnet(widths).fit_error > 0
    fit = an.fit_regnet(widths, w_0_range=(8, 512))
    assert fit.fit_error == pytest.approx(0.0, abs=1e-12)
    assert an.quantized_widths(fit.w_0, fit.w_a, fit.w_m, 23) == widths


def test_fit_regnet_single_block():
    fit = an.fit_regnet([64])
    assert fit.w_0 == 64.0 and fit.fit_error == 0.0


# ------------------------------------------------------------------------- plots


@pytest.fixture
def spaces():
    rng = np.random.default_rng(8)
    names = ["AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E"]
    errors = {n: rng.normal(45 - 2 * i, 3, size=60) for i, n in enumerate(names)}
    flops = {n: np.exp(rng.uniform(np.log(2e8), np.log(8e8), size=60)) for n in names}
    return errors, flops


def _pyplot_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def test_plot_edfs_writes_png(tmp_path, spaces):
    errors, flops = spaces
    before = _pyplot_figures()
    out = plots.plot_edfs(errors, tmp_path / "edfs.png", title="AnyNetX EDFs")
    assert out == tmp_path / "edfs.png"
    _assert_png(out)
    norm = plots.plot_edfs(errors, tmp_path / "sub" / "norm.png", complexity_by_space=flops, bins=5)
    _assert_png(norm)
    assert _pyplot_figures() == before == []


def test_plot_edf_panels_skips_missing_pairs(tmp_path, spaces):
    errors, _ = spaces
    w4, h4 = _assert_png(plots.plot_edf_panels(errors, tmp_path / "panels4.png"))
    partial = {k: v for k, v in errors.items() if k != "AnyNetX_E"}
    w3, h3 = _assert_png(plots.plot_edf_panels(partial, tmp_path / "panels3.png"))
    assert w3 == w4 and h3 < h4  # one panel fewer: rows of three, so the second row goes
    w2, h2 = _assert_png(plots.plot_edf_panels(errors, tmp_path / "panels2.png", pairs=plots.DEFAULT_PANEL_PAIRS[:2]))
    assert w2 < w3 and h2 == h3
    with pytest.raises(ValueError, match="pairs"):
        plots.plot_edf_panels({"X": [1.0, 2.0]}, tmp_path / "none.png")
    custom = plots.plot_edf_panels(errors, tmp_path / "c.png", pairs=[("AnyNetX_A", "AnyNetX_E")])
    _assert_png(custom)
    assert _pyplot_figures() == []


def test_plot_error_vs_flops_and_staircase(tmp_path, spaces):
    errors, flops = spaces
    _assert_png(plots.plot_error_vs_flops(errors, flops, tmp_path / "scatter.png"))
    widths = [an.quantized_widths(24, 36.44, 2.49, 13), [32] * 4 + [80] * 6]
    _assert_png(plots.plot_width_staircase(widths, tmp_path / "stairs.png", labels=["X-200MF", "d2l"]))
    _assert_png(plots.plot_width_staircase(widths[0], tmp_path / "one.png"))  # flat list: one model
    assert _pyplot_figures() == []


def test_analysis_and_plots_import_no_tensorflow_keras_or_pyplot():
    code = (
        "import sys, numpy as np\n"
        "from keras_regnet import analysis as an\n"
        "an.bootstrap_interval([1.0, 2.0], [3.0], an.edf_area, n_boot=10)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "from keras_regnet import plots\n"
        "import tempfile, os\n"
        "d = tempfile.mkdtemp()\n"
        "plots.plot_edfs({'a': [1.0, 2.0]}, os.path.join(d, 'x.png'))\n"
        "bad += [m for m in ('tensorflow', 'keras', 'matplotlib.pyplot') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(an.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: an.edf([]), "errors.*empty"),
        (lambda: an.edf([1.0, float("nan")]), "errors.*NaN"),
        (lambda: an.edf([1.0, float("inf")]), "errors.*inf"),
        (lambda: an.edf([[1.0, 2.0]]), "errors.*1-D"),
        (lambda: an.edf([1.0], at=[float("nan")]), "at.*NaN"),
        (lambda: an.normalized_edf([1.0, 2.0], [1.0]), "same length"),
        (lambda: an.normalized_edf([1.0, 2.0], [1.0, 0.0]), "complexity.*positive"),
        (lambda: an.normalized_edf([1.0], [1.0], bins=0), "bins.*>= 1"),
        (lambda: an.complexity_weights([1.0, -2.0]), "complexity.*positive"),
        (lambda: an.complexity_weights([], bins=3), "complexity.*empty"),
        (lambda: an.complexity_weights([1.0], bins=0), "bins"),
        (lambda: an.ks_test([], [1.0]), "errors_a.*empty"),
        (lambda: an.ks_test([1.0], [float("nan")]), "errors_b.*NaN"),
        (lambda: an.good_range([1.0, 2.0], [1.0]), "same length"),
        (lambda: an.good_range([1.0], [float("nan")]), "errors.*NaN"),
        (lambda: an.good_range([1.0], [1.0], fraction=0.0), "fraction.*\\(0, 1\\]"),
        (lambda: an.good_range([1.0], [1.0], fraction=1.5), "fraction"),
        (lambda: an.good_range([1.0], [1.0], n_boot=0), "n_boot.*>= 1"),
        (lambda: an.quantized_widths(0, 10, 2, 4), "w_0.*> 0"),
        (lambda: an.quantized_widths(24, -1, 2, 4), "w_a.*>= 0"),
        (lambda: an.quantized_widths(24, 10, 1.0, 4), "w_m.*> 1"),
        (lambda: an.quantized_widths(24, 10, 2, 0), "depth.*>= 1"),
        (lambda: an.quantized_widths(2, 10, 2, 4), "w_0.*rounds to width 0"),
        (lambda: an.fit_regnet([]), "widths_per_block.*empty"),
        (lambda: an.fit_regnet([32, 0, 64]), "widths_per_block.*positive"),
        (lambda: an.fit_regnet([32, 64], w_m_range=(0.5, 2.0)), "w_m_range"),
        (lambda: an.fit_regnet([32, 64], w_0_range=(1, 7)), "w_0_range"),
        (lambda: plots.plot_edfs({}, "x.png"), "errors_by_space.*empty"),
        (lambda: plots.plot_edfs({"a": []}, "x.png"), "errors_by_space\\['a'\\].*empty"),
        (lambda: plots.plot_edfs({"a": [1.0]}, "x.jpg"), "path"),
        (lambda: plots.plot_edfs({"a": [1.0]}, "x.png", complexity_by_space={"b": [1.0]}), "complexity_by_space.*'a'"),
        (lambda: plots.plot_error_vs_flops({"a": [1.0, 2.0]}, {"a": [1.0]}, "x.png"), "same length"),
        (lambda: plots.plot_error_vs_flops({"a": [1.0]}, {"a": [-1.0]}, "x.png"), "positive"),
        (lambda: plots.plot_width_staircase([], "x.png"), "empty"),
        (lambda: plots.plot_width_staircase([[8, 16]], "x.png", labels=["a", "b"]), "labels"),
    ],
)
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_type_errors():
    with pytest.raises(TypeError, match="errors"):
        an.edf("abc")
    with pytest.raises(TypeError, match="bins"):
        an.complexity_weights([1.0, 2.0], bins=2.5)
    with pytest.raises(TypeError, match="errors_by_space"):
        plots.plot_edfs([1.0, 2.0], "x.png")
    with pytest.raises(TypeError, match="seed"):
        an.good_range([1.0], [1.0], seed="x")
