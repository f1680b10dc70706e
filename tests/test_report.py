"""The study's report: effect sizes with intervals, failed trainings, the seed and proxy checks, figures.

Synthetic trial rows only: no training, no TensorFlow.
"""

import json
import math

import numpy as np
import pytest

from keras_regnet import analysis, plots, report, study_checks

SPACES = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNet")
SETTINGS = {
    "spaces": list(SPACES),
    "samples": 16,
    "epochs": 5,
    "flops": [5e5, 2e6],
    "dataset": "digits",
    "image_size": 32,
    "batch_size": 32,
    "lr": 0.05,
    "seed": 0,
}


def synthetic_trials(seed=0, n=16, shifts=(0.0, 0.0, 0.0, -0.02, -0.04, -0.05), fail_every=8):
    """Trial rows per space as the study hands them over (CSV strings for the design values)."""
    rng = np.random.default_rng(seed)
    trials = {}
    for name, shift in zip(SPACES, shifts):
        rows = []
        for t in range(n):
            depths = sorted(rng.integers(1, 4, 4).tolist())
            widths = sorted((rng.integers(1, 33, 4) * 8).tolist())
            error = float(np.clip(rng.normal(0.12 + shift, 0.02), 0.01, 1))
            row = {
                "trial_id": f"{t:02d}",
                "val_error": 0.9 if t % fail_every == fail_every - 1 else error,
                "flops": float(rng.uniform(6.5e5, 1.62e6)),
            }
            for i in range(4):
                row[f"depth_{i + 1}"], row[f"width_{i + 1}"] = str(depths[i]), str(widths[i])
                row[f"group_width_{i + 1}"] = str(int(rng.choice([1, 2, 4, 8])))
                row[f"bottleneck_ratio_{i + 1}"] = str(float(rng.choice([1, 2, 4])))
            if name == "RegNet":
                row.update(w_0=str(int(rng.integers(1, 32)) * 8), w_a=f"{rng.uniform(8, 64):.2f}")
                row.update(w_m=f"{rng.uniform(1.5, 3):.2f}", depth=str(sum(depths)))
            rows.append(row)
        trials[name] = rows
    return trials


def pairs_from(trials, noise, seed=1, per_space=3):
    """Seed-check rows: the study's error and a second-seed error with `noise` added."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, v in trials.items():
        for r in v[:per_space]:
            rows.append(
                {
                    "space": name,
                    "trial_id": r["trial_id"],
                    "flops": r["flops"],
                    "error": r["val_error"],
                    "error_seed2": r["val_error"] + float(rng.normal(0, noise)),
                }
            )
    return rows


def proxy_from(trials, rho_high=True, short_epochs=5, epochs=20):
    rows = [dict(r, space=k) for k, v in trials.items() for r in v[:2]]
    short = [r["val_error"] for r in rows]
    long = [e * 0.8 for e in short] if rho_high else [e * 0.8 for e in reversed(short)]
    proxy_rows = [
        {"space": r["space"], "trial_id": r["trial_id"], "flops": r["flops"], "short_error": s, "long_error": x}
        for r, s, x in zip(rows, short, long)
    ]
    return report.proxy_summary(proxy_rows, short_epochs, epochs)


@pytest.fixture
def no_figures(monkeypatch):
    """write_report without drawing (the figures have their own tests): keeps the text tests fast."""
    monkeypatch.setattr(report, "make_figures", lambda *args, **kwargs: {})


# --------------------------------------------------------------------------- effect sizes and intervals


def test_bootstrap_interval_covers_the_true_difference_and_is_reproducible():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.30, 0.02, 40), rng.normal(0.20, 0.02, 40)  # true median diff -0.1, true area +0.1
    med = analysis.bootstrap_interval(a, b, analysis.median_difference, seed=5)
    area = analysis.bootstrap_interval(a, b, analysis.edf_area, seed=5)
    assert med.low < -0.1 < med.high and med.high < 0  # contains the truth, excludes no effect
    assert area.low < 0.1 < area.high and area.low > 0
    assert med.value == pytest.approx(np.median(b) - np.median(a))
    assert analysis.bootstrap_interval(a, b, analysis.median_difference, seed=5) == med
    assert analysis.bootstrap_interval(a, b, analysis.median_difference, seed=6) != med
    # the batched path gives the same numbers as calling the statistic once per resample
    slow = analysis.bootstrap_interval(a, b, lambda x, y: analysis.median_difference(x, y), seed=5)
    assert slow == pytest.approx(med)
    narrow = analysis.bootstrap_interval(a, b, analysis.median_difference, seed=5, level=0.5)
    assert med.low < narrow.low < narrow.high < med.high


def test_edf_area_is_the_signed_area_between_the_edfs():
    a, b = [0.3, 0.5, 0.4], [0.2, 0.25, 0.6, 0.35]
    grid = np.linspace(0.2, 0.6, 200001)  # brute force: a Riemann sum of F_b - F_a
    brute = float(np.sum(analysis.edf(b, at=grid) - analysis.edf(a, at=grid)) * (grid[1] - grid[0]))
    assert analysis.edf_area(a, b) == pytest.approx(brute, abs=1e-4)
    assert analysis.edf_area(a, b) == pytest.approx(np.mean(a) - np.mean(b))
    assert analysis.edf_area([0.3, 0.4], [0.1, 0.2]) > 0  # b lower errors: positive
    assert analysis.edf_area([0.1], [0.1]) == 0.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(statistic=3), TypeError, "statistic"),
        (dict(n_boot=0), ValueError, "n_boot"),
        (dict(level=1.0), ValueError, "level"),
        (dict(seed="x"), TypeError, "seed"),
        (dict(errors_a=[]), ValueError, "errors_a"),
        (dict(errors_b=[0.1, float("nan")]), ValueError, "errors_b"),
    ],
)
def test_bootstrap_interval_names_the_bad_argument(kwargs, error, match):
    args = dict(errors_a=[0.1, 0.2], errors_b=[0.3, 0.4], statistic=analysis.median_difference, **{})
    args.update(kwargs)
    with pytest.raises(error, match=match):
        analysis.bootstrap_interval(**args)


def test_comparisons_carry_intervals_and_the_end_to_end_pair():
    trials = synthetic_trials()
    errs = {k: [r["val_error"] for r in v] for k, v in trials.items()}
    flops = {k: [r["flops"] for r in v] for k, v in trials.items()}
    s = report.summarize(errs, flops, n_boot=500)
    pairs = [(c["a"], c["b"]) for c in s["comparisons"]]
    assert ("AnyNetX_A", "RegNet") in pairs and pairs == [p[:2] for p in report.PAPER_PAIRS]
    for c in s["comparisons"]:
        md, area = c["median_difference"], c["edf_area"]
        assert md["value"] == pytest.approx(np.median(errs[c["b"]]) - np.median(errs[c["a"]]))
        assert area["value"] == pytest.approx(np.mean(errs[c["a"]]) - np.mean(errs[c["b"]]))
        assert md["low"] <= md["value"] <= md["high"] and area["low"] <= area["value"] <= area["high"]


# --------------------------------------------------------------------------- failed trainings


def test_failed_share_counts_errors_above_the_threshold(tmp_path, no_figures):
    errs = {"AnyNetX_A": [0.1, 0.25, 0.3, 0.2], "RegNet": [0.1, 0.12, 0.15, 0.9]}
    flops = {k: [1e6, 1.2e6, 1.4e6, 1.6e6] for k in errs}
    s = report.summarize(errs, flops, fail_above=0.2, n_boot=50)
    assert s["fail_above"] == 0.2
    assert (s["spaces"]["AnyNetX_A"]["failed"], s["spaces"]["AnyNetX_A"]["failed_share"]) == (2, 0.5)  # 0.2 is not
    assert (s["spaces"]["RegNet"]["failed"], s["spaces"]["RegNet"]["failed_share"]) == (1, 0.25)
    assert report.summarize(errs, flops, fail_above=0.5, n_boot=50)["spaces"]["AnyNetX_A"]["failed"] == 0

    trials = synthetic_trials()  # every 8th training failed (error 0.9)
    summary = report.write_report(str(tmp_path), trials, SETTINGS)  # no fail_above: 0.2
    assert summary["fail_above"] == 0.2
    assert all(v["failed"] == 2 and v["failed_share"] == 2 / 16 for v in summary["spaces"].values())
    text = (tmp_path / "report.md").read_text()
    assert "failed (error > 0.2)" in text and "| 12% (2/16) |" in text
    assert text.index("failed (error > 0.2)") < text.index("## The paper's comparisons")
    summary = report.write_report(str(tmp_path), trials, dict(SETTINGS, fail_above=0.95))
    assert summary["fail_above"] == 0.95 and summary["spaces"]["RegNet"]["failed"] == 0


# --------------------------------------------------------------------------- can these errors rank networks?


def test_seed_check_summary_on_synthetic_pairs():
    trials = synthetic_trials(fail_every=100)
    good = report.seed_check_summary(pairs_from(trials, noise=0.001))
    a = np.array([r["error"] for r in good["rows"]])
    b = np.array([r["error_seed2"] for r in good["rows"]])
    assert good["k"] == 18 and good["spearman"] > 0.95 and good["p"] < 1e-6
    assert good["seed_sd"] == pytest.approx(math.sqrt(np.mean((a - b) ** 2) / 2))
    assert good["between_sd"] == pytest.approx(np.std((a + b) / 2, ddof=1)) and good["between_sd"] > good["seed_sd"]
    assert report.rank_check(good, proxy_from(trials)) == (True, None)
    noisy = report.seed_check_summary(pairs_from(trials, noise=0.1))
    assert noisy["spearman"] < 0.7 and noisy["seed_sd"] > noisy["between_sd"] / 2
    can_rank, warning = report.rank_check(noisy, proxy_from(trials))
    assert can_rank is False and warning.startswith("unreliable: errors cannot rank networks (seed rho 0.")
    ok = {"spearman": 0.9, "k": 5}
    assert report.rank_check({"spearman": 0.69, "k": 10}, ok) == (
        False,
        "unreliable: errors cannot rank networks (seed rho 0.69 (k=10) < 0.7)",
    )
    assert report.rank_check({"spearman": report.RANK_THRESHOLD, "k": 10}, ok) == (True, None)
    assert "proxy rho undefined" in report.rank_check(ok, {"spearman": math.nan, "k": 3})[1]
    assert report.rank_check(None, ok)[0] is None and report.rank_check(None, None)[0] is None
    assert report.rank_check({"spearman": 0.2, "k": 4}, None)[0] is False  # one failed check is enough
    with pytest.raises(ValueError, match="error_seed2"):
        report.seed_check_summary([{"error": 0.1}])
    with pytest.raises(TypeError, match="rows"):
        report.seed_check_summary("error")
    empty = report.seed_check_summary([])  # every second-seed training failed: the check fails, not the study
    assert empty["k"] == 0 and math.isnan(empty["spearman"]) and math.isnan(empty["seed_sd"])
    assert report.rank_check(empty, ok) == (
        False,
        "unreliable: errors cannot rank networks (seed rho undefined (k=0, constant errors or too few networks) < 0.7)",
    )


@pytest.mark.parametrize(
    "noise, proxy_high, can_rank",
    [(0.1, True, False), (0.001, False, False), (0.001, True, True), (0.001, None, None)],
)
def test_rank_warning_in_report_and_summary(tmp_path, no_figures, noise, proxy_high, can_rank):
    trials = synthetic_trials(fail_every=100)
    seed = report.seed_check_summary(pairs_from(trials, noise=noise))
    proxy = None if proxy_high is None else proxy_from(trials, rho_high=proxy_high)
    summary = report.write_report(str(tmp_path), trials, SETTINGS, proxy=proxy, seed_check=seed)
    saved = json.loads((tmp_path / "summary.json").read_text())
    text = (tmp_path / "report.md").read_text()
    assert saved["can_rank"] is can_rank and summary["can_rank"] is can_rank
    assert saved["seed_check"]["k"] == 18 and saved["seed_check"]["spearman"] == pytest.approx(seed["spearman"])
    section = text.index("## Can these errors rank networks?")
    assert section < text.index("## The paper's comparisons") and section < text.index("**agrees**")
    assert f"k = {seed['k']}" in text[section:] and f"{seed['seed_sd']:.4f}" in text[section:]
    rows = [line for line in text.splitlines() if line.startswith("| AnyNetX_") and " vs " in line]
    assert len(rows) == len(report.PAPER_PAIRS)
    if can_rank:
        assert saved["rank_warning"] is None and "cannot rank" not in text and "unchecked" not in text
        assert not any("unreliable" in line for line in report.verdict_lines(summary))
    elif can_rank is False:
        warning = saved["rank_warning"]
        which = "seed" if noise > 0.01 else "proxy"
        assert warning.startswith(f"unreliable: errors cannot rank networks ({which} rho ")
        assert "**No: this run's errors cannot rank networks.**" in text[section:]
        assert all(warning in line for line in rows)
        assert all(warning in line for line in report.verdict_lines(summary))
    else:
        assert saved["rank_warning"].startswith("unchecked") and "no proxy check" in saved["rank_warning"]
        assert "Proxy check: not run" in text and all("unchecked" in line for line in rows)


def test_verdict_lines_carry_the_small_sample_caveat(tmp_path, no_figures):
    trials = {k: v[:3] for k, v in synthetic_trials(fail_every=100).items() if k in ("AnyNetX_E", "RegNet")}
    summary = report.write_report(str(tmp_path), trials, dict(SETTINGS, spaces=list(trials)))
    (line,) = report.verdict_lines(summary)
    c = summary["comparisons"][0]
    assert line.startswith(f"AnyNetX_E vs RegNet: KS D={c['ks_d']:.3f} p={c['ks_p']:.3g} median diff ")
    assert "no KS D is significant at p<0.05 with so few models" in line
    assert "unchecked: whether errors rank networks is unknown" in line  # neither check ran
    md = c["median_difference"]
    assert f"[{md['low']:+.4f}, {md['high']:+.4f}]" in line


def test_one_epoch_is_singular(tmp_path, no_figures):
    trials = synthetic_trials(fail_every=100)
    proxy = proxy_from(trials, short_epochs=1, epochs=4)
    report.write_report(str(tmp_path), trials, dict(SETTINGS, epochs=1), proxy=proxy)
    text = (tmp_path / "report.md").read_text()
    assert "each trained 1 epoch (" in text and "retrained for 4 epochs" in text
    assert "1 epochs" not in text
    assert report.epochs_text(1) == "1 epoch" and report.epochs_text(2) == "2 epochs"


# --------------------------------------------------------------------------- figures


def _png_size(path):
    from matplotlib import image

    pixels = image.imread(path)
    assert pixels.ndim == 3 and float(pixels[..., :3].std()) > 0.01  # not blank
    return pixels.shape[1], pixels.shape[0]


def test_figures_are_written_at_readable_sizes(tmp_path):
    trials = synthetic_trials()
    seed = report.seed_check_summary(pairs_from(trials, noise=0.001))
    summary = report.write_report(str(tmp_path), trials, SETTINGS, proxy=proxy_from(trials), seed_check=seed)
    assert set(summary["figures"]) == set(report.FIGURES)
    text = (tmp_path / "report.md").read_text()
    for key, name in report.FIGURES.items():
        width, height = _png_size(tmp_path / name)
        assert 500 <= width <= 2000 and 400 <= height <= 1600, (name, width, height)
        assert f"![{report.FIGURE_TITLES[key]}]({name})" in text
    # six pairs wrap into rows of three (it was one 2520-pixel row)
    width, height = _png_size(tmp_path / report.FIGURES["panels"])
    assert width < 1700 and height > 900


def test_one_pair_panel_is_wide_enough_for_its_title(tmp_path):
    errs = {"AnyNetX_E": [0.1, 0.2, 0.15], "RegNet": [0.12, 0.11, 0.2]}
    title = "Complexity-normalized error EDFs (KS on the raw errors)"
    path = plots.plot_edf_panels(errs, tmp_path / "p.png", pairs=[("AnyNetX_E", "RegNet")], title=title)
    width, _ = _png_size(path)
    assert width >= 500
    assert "\n" in plots._wrap(title, 4.3) and max(map(len, plots._wrap(title, 4.3).split("\n"))) < len(title)


def test_flops_axis_has_readable_ticks_under_one_decade():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    ax.scatter([6.5e5, 1.62e6], [0.1, 0.2])
    plots._flops_axis(ax, 6.5e5, 1.62e6)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert ax.get_xscale() == "linear" and len(labels) >= 3 and all(x.endswith("M") for x in labels), labels
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    plots._flops_axis(ax2, 2e5, 4e8)  # several decades: log
    assert ax2.get_xscale() == "log"


def test_error_vs_params_has_a_panel_per_varying_parameter(tmp_path):
    trials = synthetic_trials()
    path = plots.plot_error_vs_params(trials, tmp_path / "params.png", fail_above=0.2)
    width, height = _png_size(path)
    assert width > height > 400
    # 1 total depth + 4 x (depth, width, group width, bottleneck ratio) + RegNet's w_0, w_a, w_m = 20 panels, 4 rows
    wide = plots.plot_error_vs_params({"RegNet": trials["RegNet"]}, tmp_path / "regnet.png")
    assert _png_size(wide)[1] > 1000
    few = [{"val_error": e, "depth_1": "1", "width_1": w} for e, w in ((0.1, "8"), (0.2, "16"), (0.15, "32"))]
    _, small_height = _png_size(plots.plot_error_vs_params({"AnyNetX_A": few}, tmp_path / "one.png"))  # width only
    assert small_height < 500
    with pytest.raises(ValueError, match="varies"):
        plots.plot_error_vs_params({"AnyNetX_A": [dict(r, width_1="8") for r in few]}, tmp_path / "none.png")


# --------------------------------------------------------------------------- the case, the labels, the retested verdict


def proxy_two_seeds(trials, long_quality, seed=2):
    """Proxy rows of 5 networks per space with two long seeds: long errors rank by the short ones
    ("same"), by seed noise alone ("none") or by an unrelated quality ("other")."""
    rng = np.random.default_rng(seed)
    rows = [dict(r, space=k) for k, v in trials.items() for r in v[:5]]
    other = rng.permutation(len(rows))
    proxy_rows = []
    for i, r in enumerate(rows):
        base = {"same": r["val_error"] * 0.5, "none": 0.05, "other": 0.03 + 0.002 * other[i]}[long_quality]
        proxy_rows.append(
            {
                "space": r["space"],
                "trial_id": r["trial_id"],
                "flops": r["flops"],
                "short_error": r["val_error"],
                "long_error": base + float(rng.normal(0, 0.0005)),
                "long_error_seed2": base + float(rng.normal(0, 0.0005)),
            }
        )
    return report.proxy_summary(proxy_rows, 5, 20)


@pytest.mark.parametrize(
    "long_quality, case, can_rank, label",
    [
        ("same", "a", True, None),
        ("none", "b", True, "about short training on this data"),
        ("other", "c", False, "unreliable"),
    ],
)
def test_report_states_the_case_and_labels_every_verdict(tmp_path, no_figures, long_quality, case, can_rank, label):
    trials = synthetic_trials(fail_every=100)
    seed = report.seed_check_summary(pairs_from(trials, noise=0.001))
    proxy = proxy_two_seeds(trials, long_quality)
    summary = report.write_report(str(tmp_path), trials, SETTINGS, proxy=proxy, seed_check=seed)
    saved = json.loads((tmp_path / "summary.json").read_text())
    text = (tmp_path / "report.md").read_text()
    check = saved["proxy_check"]
    assert check["case"] == case and check["k_long_seeds"] == 30
    assert check["spearman"] == pytest.approx(proxy["spearman"])  # the raw proxy rho is kept
    assert set(check["corrected"]) >= {"value", "low", "high"} and isinstance(check["long_seed_spearman"], float)
    assert saved["can_rank"] is can_rank and summary["can_rank"] is can_rank
    section = text[text.index("## Can these errors rank networks?") : text.index("## Spaces")]
    assert f"**Case ({case}): {study_checks.CASE_TEXT[case]}" in section
    assert "Seed Spearman at each schedule: 5 epochs " in section
    assert "The case rule, fixed before any data" in section
    rows = [line for line in text.splitlines() if line.startswith("| AnyNetX_") and " vs " in line]
    if label is None:
        assert saved["rank_warning"] is None and all(c["rank_caveat"] is None for c in saved["comparisons"])
    else:
        assert saved["rank_warning"].startswith(label) and f"case ({case})" in saved["rank_warning"]
        assert all(f"_{saved['rank_warning']}_" in line for line in rows)
    for c in saved["comparisons"]:
        assert c["detectable"]["ks_d"] == pytest.approx(analysis.minimum_detectable_d(16, 16))
        assert c["detectable"]["median_difference"] > 0
    assert saved["confirm"] is None


def headline_confirm(trials, regnet_long_shift, k=10):
    """The headline pair's first k networks at 20 epochs: half their short error, RegNet's shifted by the argument."""
    rows = []
    for space in ("AnyNetX_A", "RegNet"):
        for r in trials[space][:k]:
            shift = regnet_long_shift if space == "RegNet" else 0.0
            rows.append(
                {
                    "space": space,
                    "trial_id": r["trial_id"],
                    "flops": r["flops"],
                    "short_error": r["val_error"],
                    "long_error": r["val_error"] * 0.5 + shift,
                }
            )
    return {"a": "AnyNetX_A", "b": "RegNet", "k": k, "short_epochs": 5, "epochs": 20, "rows": rows}


@pytest.mark.parametrize("shift, result", [(0.0, "holds"), (0.08, "reverses")])
def test_the_headline_verdict_retested_at_the_long_schedule(tmp_path, no_figures, shift, result):
    trials = synthetic_trials(fail_every=100)
    seed = report.seed_check_summary(pairs_from(trials, noise=0.001))
    proxy = proxy_two_seeds(trials, "none")  # case (b): every verdict "about short training on this data"
    confirm = headline_confirm(trials, shift)
    summary = report.write_report(str(tmp_path), trials, SETTINGS, proxy=proxy, seed_check=seed, confirm=confirm)
    saved = json.loads((tmp_path / "summary.json").read_text())
    text = (tmp_path / "report.md").read_text()
    got = saved["confirm"]
    assert got["result"] == result and (got["a"], got["b"]) == ("AnyNetX_A", "RegNet")
    for schedule, epochs in (("short", 5), ("long", 20)):
        s = got[schedule]
        assert s["epochs"] == epochs and (s["n_a"], s["n_b"]) == (10, 10)
        assert {"ks_d", "ks_p", "median_difference", "edf_area", "detectable"} <= set(s)
        assert s["median_difference"]["low"] <= s["median_difference"]["value"] <= s["median_difference"]["high"]
    assert got["long"]["ks_p"] < 0.05
    by_pair = {(c["a"], c["b"]): c for c in saved["comparisons"]}
    headline = by_pair["AnyNetX_A", "RegNet"]
    assert headline["confirm"] == result and "at 20 epochs (10 vs 10 networks, KS p=" in headline["detail"]
    others = [c for pair, c in by_pair.items() if pair != ("AnyNetX_A", "RegNet")]
    assert all(c["rank_caveat"].startswith("about short training on this data") for c in others)
    if result == "holds":
        assert headline["rank_caveat"] is None  # reported plainly
    else:
        assert headline["rank_caveat"].startswith("unreliable: reverses at 20 epochs")
    assert "## The headline comparison at 20 epochs" in text and f"Result: **{result}**" in text
    assert "| 5 epochs | 10 vs 10 |" in text and "| 20 epochs | 10 vs 10 |" in text
    assert report.verdict_lines(summary)[-1].startswith("AnyNetX_A vs RegNet at 20 epochs (10 vs 10 networks): KS D=")
