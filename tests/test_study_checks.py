"""What a study's checks can show: the three cases, the corrected proxy correlation, power, the retested verdict.

Synthetic records only: no training, no TensorFlow.
"""

import math

import numpy as np
import pytest
from scipy import stats

from keras_regnet import analysis, report, study_checks


def records(k=30, *, short_noise=0.2, long_noise=0.2, long_quality="same", seed=0, seed_k=20):
    """(proxy summary, seed check summary) of k networks whose errors are quality + seed noise.

    `long_quality`: "same" (long training ranks by the short quality), "none"
    (long errors are seed noise alone: the long schedule does not separate
    networks), "other" (long training ranks by an unrelated quality).
    """
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=k)
    long_q = {"same": quality, "none": np.zeros(k), "other": rng.normal(size=k)}[long_quality]
    rows = [
        {
            "space": "AnyNetX_A" if i % 2 else "RegNet",
            "trial_id": f"{i:03d}",
            "flops": 1e6,
            "short_error": 0.1 + 0.01 * (quality[i] + rng.normal(0, short_noise)),
            "long_error": 0.05 + 0.01 * (long_q[i] + rng.normal(0, long_noise)),
            "long_error_seed2": 0.05 + 0.01 * (long_q[i] + rng.normal(0, long_noise)),
        }
        for i in range(k)
    ]
    seed_quality = rng.normal(size=seed_k)
    seed_rows = [
        {
            "space": "AnyNetX_A",
            "trial_id": f"{i:03d}",
            "flops": 1e6,
            "error": 0.1 + 0.01 * (q + rng.normal(0, short_noise)),
            "error_seed2": 0.1 + 0.01 * (q + rng.normal(0, short_noise)),
        }
        for i, q in enumerate(seed_quality)
    ]
    return report.proxy_summary(rows, 5, 20), report.seed_check_summary(seed_rows)


# --------------------------------------------------------------------------- the three cases


def test_the_three_cases_are_told_apart():
    proxy, seed = records(long_quality="same")
    a = study_checks.assess_proxy(proxy, seed)
    assert a["case"] == "a" and a["long_seed_spearman"] > 0.9 and a["corrected"]["value"] >= 0.7
    assert a["case_text"].startswith("case (a): short training ranks networks as long training does")

    proxy, seed = records(long_quality="none")  # a reference whose two seeds agree at rho near 0
    b = study_checks.assess_proxy(proxy, seed)
    assert abs(b["long_seed_spearman"]) < 0.4 and b["case"] == "b"
    assert "does not separate networks" in b["case_text"] and "5-epoch training on this data" in b["case_text"]

    proxy, seed = records(long_quality="other")  # a reliable reference that ranks networks otherwise
    c = study_checks.assess_proxy(proxy, seed)
    assert c["long_seed_spearman"] > 0.9 and c["corrected"]["value"] < 0.7 and c["case"] == "c"
    assert c["case_text"].startswith("case (c): short training ranks networks differently")

    for result in (a, b, c):
        assert result["k_long_seeds"] == 30 and result["short_seed_spearman"] == seed["spearman"]


def test_case_rule_at_its_boundaries():
    rule = study_checks.proxy_case
    reliable = {"value": 0.7, "low": 0.01, "high": 0.9}
    assert rule(None, None) is None  # fewer than 3 networks with both long seeds
    assert rule({"value": 0.69, "low": 0.4, "high": 0.9}, {"value": 1.0}) == "b"  # below the bar
    assert rule({"value": 0.9, "low": 0.0, "high": 1.0}, {"value": 1.0}) == "b"  # its interval reaches 0
    assert rule({"value": math.nan, "low": math.nan, "high": math.nan}, None) == "b"  # constant long errors
    assert rule(reliable, {"value": 0.7}) == "a"
    assert rule(reliable, {"value": 0.69}) == "c"
    assert rule(reliable, {"value": None}) is None and rule(reliable, None) is None  # not estimable
    assert study_checks.RANK_THRESHOLD == report.RANK_THRESHOLD == 0.7


def test_corrected_correlation_is_spearmans_formula():
    proxy, seed = records(long_quality="same", short_noise=0.6, long_noise=0.5, seed=3)
    result = study_checks.assess_proxy(proxy, seed)
    rows = proxy["rows"]
    short = [r["short_error"] for r in rows]
    long, long2 = [r["long_error"] for r in rows], [r["long_error_seed2"] for r in rows]
    cross = stats.spearmanr(short, long2).statistic
    r_long = stats.spearmanr(long, long2).statistic
    r_short = stats.spearmanr([r["error"] for r in seed["rows"]], [r["error_seed2"] for r in seed["rows"]]).statistic
    assert result["cross_seed_spearman"] == pytest.approx(cross)
    assert result["long_seed_spearman"] == pytest.approx(r_long)
    corrected = result["corrected"]
    assert corrected["value"] == pytest.approx(cross / math.sqrt(r_short * r_long)) and not corrected["clipped"]
    assert corrected["low"] < corrected["value"] < corrected["high"] <= 1
    assert corrected["estimable_share"] == 1.0
    assert study_checks.assess_proxy(proxy, seed) == result  # a fixed bootstrap seed: the same interval

    assert study_checks.correct(0.9, 0.8, 0.9) == (1.0, True)  # 0.9 / sqrt(0.72) > 1: clipped, and said
    assert study_checks.correct(0.3, 0.0, 0.9) == (None, False)  # a reliability <= 0: not estimable
    assert study_checks.correct(0.3, 0.8, -0.1) == (None, False)
    assert study_checks.correct(0.3, None, 0.8) == (None, False)  # no seed check
    assert "clipped at 1" in study_checks.corrected_text({**corrected, "value": 1.0, "clipped": True})
    assert study_checks.corrected_text({"value": None}).startswith("not estimable")


def test_batched_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 5, size=(50, 12)).astype(float)  # many ties, as in resamples
    y = x + rng.integers(0, 3, size=(50, 12))
    got = study_checks.batched_spearman(x, y)
    for row, value in zip(range(50), got):
        expected = stats.spearmanr(x[row], y[row]).statistic
        assert (math.isnan(expected) and math.isnan(value)) or value == pytest.approx(expected)
    assert math.isnan(study_checks.batched_spearman(np.ones((1, 4)), np.arange(4.0)[None])[0])


def test_without_a_second_long_seed_or_a_seed_check_the_case_is_not_told():
    proxy, seed = records()
    old = report.proxy_summary([{k: v for k, v in r.items() if k != "long_error_seed2"} for r in proxy["rows"]], 5, 20)
    result = study_checks.assess_proxy(old, seed)
    assert result["k_long_seeds"] == 0 and result["case"] is None and result["corrected"] is None
    assert report.rank_check(seed, {**old, **result}) == report.rank_check(seed, old)  # counted by its raw rho
    no_seed = study_checks.assess_proxy(proxy, None)
    assert no_seed["corrected"]["value"] is None and no_seed["case"] is None
    assert "needs the seed check" in no_seed["case_text"]


# --------------------------------------------------------------------------- labels follow the cases


@pytest.mark.parametrize(
    "long_quality, can_rank, label",
    [("same", True, None), ("none", True, "about short training on this data"), ("other", False, "unreliable")],
)
def test_labels_follow_the_case(long_quality, can_rank, label):
    proxy, seed = records(long_quality=long_quality)
    proxy = {**proxy, **study_checks.assess_proxy(proxy, seed)}
    got, warning = report.rank_check(seed, proxy)
    assert got is can_rank
    if label is None:
        assert warning is None
    else:
        assert warning.startswith(label) and f"case ({proxy['case']})" in warning
    noisy_seed = {**seed, "spearman": 0.5}  # the short schedule's own seeds disagree: unreliable whatever the case
    assert report.rank_check(noisy_seed, proxy)[1].startswith("unreliable: errors cannot rank networks (seed rho 0.50")


# --------------------------------------------------------------------------- power


def test_detectable_effects():
    found = study_checks.detectable(30, 41, {"value": -0.01, "low": -0.03, "high": 0.01})
    assert found["ks_d"] == analysis.minimum_detectable_d(30, 41)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # 2.80
    assert found["median_difference"] == pytest.approx(z * 0.04 / (2 * stats.norm.ppf(0.975)))
    assert found["power"] == 0.8
    assert study_checks.detectable(2, 2, {"value": 0, "low": 0, "high": 0}) == {
        "ks_d": None,
        "median_difference": None,
        "power": 0.8,
    }
    missed = study_checks.power_text(-0.002, 0.1, found)
    assert "would likely be missed" in missed and "does not show there is none" in missed
    assert "would likely have been detected" in study_checks.power_text(-0.05, 0.1, found)


def test_each_comparison_says_what_it_could_detect():
    rng = np.random.default_rng(1)
    same = rng.normal(0.3, 0.03, 40)
    errs = {"AnyNetX_D": same, "AnyNetX_E": rng.permutation(same) + 0.001, "RegNet": same - 0.1}
    flops = {k: rng.uniform(1e6, 2e6, 40) for k in errs}
    by_pair = {(c["a"], c["b"]): c for c in report.summarize(errs, flops, n_boot=500)["comparisons"]}
    de, er = by_pair["AnyNetX_D", "AnyNetX_E"], by_pair["AnyNetX_E", "RegNet"]
    for c in (de, er):
        md = c["median_difference"]
        assert c["detectable"] == study_checks.detectable(40, 40, md)
    assert de["verdict"] == "inconclusive" and "power: a real effect the size found" in de["detail"]
    assert er["verdict"] == "agrees" and "power:" not in er["detail"]


# --------------------------------------------------------------------------- the headline verdict at long training


def confirm_rows(long_shift, n=15, seed=0):
    """The headline pair's networks: RegNet 0.02 lower at short training, `long_shift` lower at long training."""
    rng = np.random.default_rng(seed)
    rows = []
    for space, short_shift, shift in (("AnyNetX_A", 0.0, 0.0), ("RegNet", -0.02, -long_shift)):
        for i in range(n):
            rows.append(
                {
                    "space": space,
                    "trial_id": f"{i:03d}",
                    "short_error": 0.08 + short_shift + rng.normal(0, 0.004),
                    "long_error": 0.05 + shift + rng.normal(0, 0.004),
                }
            )
    rows.append({"space": "RegNet", "trial_id": "999", "short_error": 0.07, "long_error": None})  # failed: left out
    return {"a": "AnyNetX_A", "b": "RegNet", "k": n, "short_epochs": 5, "epochs": 20, "rows": rows}


@pytest.mark.parametrize("long_shift, result", [(0.02, "holds"), (-0.02, "reverses"), (0.0, "not resolved")])
def test_confirm_holds_reverses_or_is_not_resolved(long_shift, result):
    confirm = confirm_rows(long_shift)
    summary = study_checks.confirm_summary(confirm, {"lower_errors": "RegNet"}, n_boot=300)
    assert summary["result"] == result and summary["text"].startswith(f"{result} at 20 epochs")
    for schedule, key, epochs in (("short", "short_error", 5), ("long", "long_error", 20)):
        got = summary[schedule]
        a = [r[key] for r in confirm["rows"] if r["space"] == "AnyNetX_A"]
        b = [r[key] for r in confirm["rows"] if r["space"] == "RegNet" and r["long_error"] is not None]
        ref = stats.ks_2samp(a, b)
        assert (got["n_a"], got["n_b"], got["epochs"]) == (15, 15, epochs)
        assert got["ks_d"] == pytest.approx(ref.statistic) and got["ks_p"] == pytest.approx(ref.pvalue)
        md = got["median_difference"]
        assert md["value"] == pytest.approx(np.median(b) - np.median(a)) and md["low"] <= md["value"] <= md["high"]
        assert got["detectable"]["ks_d"] == analysis.minimum_detectable_d(15, 15)
    if result == "not resolved":
        assert "power:" in summary["text"]
    one_sided = dict(confirm, rows=[r for r in confirm["rows"] if r["space"] == "RegNet"])
    assert study_checks.confirm_summary(one_sided, {"lower_errors": "RegNet"}) is None
