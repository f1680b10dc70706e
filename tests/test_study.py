import csv
import dataclasses
import json
import math
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import csv_rows, run_chief_and_workers, run_cli
from scipy import stats

from keras_regnet import analysis, design_spaces, report, study, study_checks

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- synthetic (no training)


def synthetic_trials(seed=0, n=20, shifts=(0.0, 0.0, 0.0, -0.05, -0.10, -0.12)):
    """Trial rows per space as load_trials returns them: errors shifted per space, random flops."""
    rng = np.random.default_rng(seed)
    trials = {}
    for name, shift in zip(study.SPACES, shifts):
        rows = []
        for t in range(n):
            depths = sorted(rng.integers(1, 4, 4).tolist())
            widths = sorted((rng.integers(1, 33, 4) * 8).tolist())
            row = {
                "trial_id": f"{t:02d}",
                "val_error": float(np.clip(rng.normal(0.3 + shift, 0.04), 0, 1)),
                "flops": float(rng.uniform(5e5, 2e6)),
            }
            for i in range(4):
                row[f"depth_{i + 1}"], row[f"width_{i + 1}"] = str(depths[i]), str(widths[i])
            rows.append(row)
        trials[name] = rows
    return trials


SETTINGS = {
    "spaces": list(study.SPACES),
    "samples": 20,
    "epochs": 5,
    "flops": [5e5, 2e6],
    "dataset": "digits",
    "image_size": 32,
    "batch_size": 32,
    "lr": 0.05,
    "seed": 0,
}


def test_summarize_matches_analysis_and_scipy():
    trials = synthetic_trials()
    errs = {k: [r["val_error"] for r in v] for k, v in trials.items()}
    flops = {k: [r["flops"] for r in v] for k, v in trials.items()}
    s = report.summarize(errs, flops)
    crange = (min(min(f) for f in flops.values()), max(max(f) for f in flops.values()))
    assert s["flops_range"] == list(crange) and s["bins"] == 4  # 20 models per space -> 4 shared bins
    for name, e in errs.items():
        v = s["spaces"][name]
        assert v["n"] == 20 and v["min"] == min(e) and v["median"] == pytest.approx(np.median(e))
        assert v["mean"] == pytest.approx(np.mean(e))
        for level, got in zip(s["error_levels"], v["edf"]):
            assert got == pytest.approx(sum(x < level for x in e) / len(e))  # the strict EDF, counted by hand
        expected = analysis.normalized_edf(e, flops[name], 4, at=s["error_levels"], complexity_range=crange)
        assert v["normalized_edf"] == pytest.approx(list(expected))
        w = analysis.complexity_weights(flops[name], 4, complexity_range=crange)
        assert v["normalized_mean"] == pytest.approx(float(np.dot(w, e)))
    assert [(c["a"], c["b"]) for c in s["comparisons"]] == [p[:2] for p in report.PAPER_PAIRS]
    for c in s["comparisons"]:
        ref = stats.ks_2samp(errs[c["a"]], errs[c["b"]])
        assert c["ks_d"] == pytest.approx(ref.statistic) and c["ks_p"] == pytest.approx(ref.pvalue)


def test_verdicts_are_honest():
    rng = np.random.default_rng(1)
    same = rng.normal(0.3, 0.03, 40)
    better = same - 0.1  # clearly lower errors
    flops = {k: rng.uniform(1e6, 2e6, 40) for k in study.SPACES}
    errs = {
        "AnyNetX_A": same,
        "AnyNetX_B": rng.permutation(same),
        "AnyNetX_C": same + 0.1,
        "AnyNetX_D": same,
        "AnyNetX_E": better,
        "RegNet": better + 0.005,
    }
    by_pair = {(c["a"], c["b"]): c for c in report.summarize(errs, flops)["comparisons"]}
    assert by_pair["AnyNetX_A", "AnyNetX_B"]["verdict"] == "consistent"  # identical samples
    assert by_pair["AnyNetX_B", "AnyNetX_C"]["verdict"] == "disagrees"  # C much worse: sharing g cost accuracy
    cd = by_pair["AnyNetX_C", "AnyNetX_D"]
    assert cd["verdict"] == "agrees" and cd["lower_errors"] == "AnyNetX_D" and cd["ks_p"] < 1e-6
    assert by_pair["AnyNetX_D", "AnyNetX_E"]["verdict"] == "agrees"
    er = by_pair["AnyNetX_E", "RegNet"]
    assert er["verdict"] == "inconclusive" and "only KS D >=" in er["detail"]
    assert report.verdict("better", 0.01, "a", 20, 20) == (
        "disagrees",
        "significantly worse, unlike the paper (p=0.01)",
    )


def test_detectability_comes_from_the_exact_ks_test():
    from scipy import stats

    assert analysis.minimum_detectable_d(8, 8) == 0.75  # the asymptotic formula said 0.68
    assert analysis.minimum_detectable_d(2, 2) is None  # no D is significant at p < 0.05
    assert "no KS D is significant" in report.verdict("better", 0.5, "b", 2, 2)[1]
    assert "only KS D >= 0.75 is detectable" in report.verdict("better", 0.5, "b", 8, 8)[1]
    rng = np.random.default_rng(0)
    for n, m in ((8, 8), (7, 12), (30, 41), (50, 50)):
        x, y = rng.normal(size=n), rng.normal(0.4, size=m)
        result = stats.ks_2samp(x, y, method="exact")
        assert analysis.ks_exact_p(n, m, result.statistic) == pytest.approx(result.pvalue, rel=1e-9, abs=1e-12)
        d = analysis.minimum_detectable_d(n, m)
        below = max(v for v in {abs(i * m - j * n) / (n * m) for i in range(n + 1) for j in range(m + 1)} if v < d)
        assert analysis.ks_exact_p(n, m, d) < 0.05 <= analysis.ks_exact_p(n, m, below)


def _png_ok(path):
    from matplotlib import image

    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, path
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.01  # not blank


def test_report_and_figures_from_synthetic_trials(tmp_path):
    trials = synthetic_trials()
    summary = report.write_report(str(tmp_path), trials, SETTINGS)
    text = (tmp_path / "report.md").read_text()
    for key in ("panels", "edfs", "flops", "staircase"):
        name = report.FIGURES[key]
        _png_ok(tmp_path / name)
        assert f"]({name})" in text
    assert json.loads((tmp_path / "summary.json").read_text())["spaces"].keys() == trials.keys()
    for name, v in summary["spaces"].items():
        assert (f"| {name} | {v['n']} | {v['min']:.4f} | {v['median']:.4f} | {v['mean']:.4f} |") in text
    for c in summary["comparisons"]:
        assert f"| {c['a']} vs {c['b']} | {c['paper']} | {c['ks_d']:.3f} | {c['ks_p']:.3g} |" in text
    assert "proxy" not in summary["figures"]


def test_report_with_one_space_and_a_missing_one(tmp_path):
    trials = synthetic_trials()
    summary = report.write_report(
        str(tmp_path), {"AnyNetX_E": trials["AnyNetX_E"], "RegNet": []}, dict(SETTINGS, spaces=["AnyNetX_E", "RegNet"])
    )
    assert summary["comparisons"] == [] and summary["missing"] == ["RegNet"]
    assert not (tmp_path / report.FIGURES["panels"]).exists()
    assert "| RegNet | 0 |" in (tmp_path / "report.md").read_text()


def test_check_networks_are_picked_at_random_from_every_space_alike():
    rows = [{"space": s, "trial_id": f"{i:02d}", "val_error": i / 10} for s in ("A", "B", "C") for i in range(6)]
    picked = study.pick_networks(rows, 7, seed=0)
    assert len(picked) == 7 and len({(r["space"], r["trial_id"]) for r in picked}) == 7
    spaces = [r["space"] for r in picked]
    assert spaces == ["A", "B", "C", "A", "B", "C", "A"]  # the spaces in turn
    assert study.pick_networks(list(reversed(rows)), 7, seed=0) == picked  # by seed, not by row order
    assert study.pick_networks(rows, 7, seed=1) != picked
    assert len(study.pick_networks(rows, 100, seed=0)) == 18
    short, long = [0.1, 0.2, 0.3, 0.4, 0.5], [0.15, 0.1, 0.35, 0.3, 0.6]
    rho, p = analysis.spearman(short, long)
    ref = stats.spearmanr(short, long)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue) and rho == pytest.approx(0.8)


def test_resuming_the_committed_study_trains_only_the_new_checks(tmp_path, monkeypatch):
    """docs/study-quick's tables (the --quick recipe, as written before the second long seed): a rerun reuses
    every training in them and adds the 30 second seeds and the confirm networks the proxy check lacks (no
    training here)."""
    from keras_regnet import trial_workers

    docs = ROOT / "docs" / "study-quick"
    trials = {}
    for r in csv_rows(docs / study.TRIALS_FILE):
        trials.setdefault(r["space"], []).append(dict(r, val_error=float(r["val_error"]), flops=float(r["flops"])))
    old_columns = {
        study.PROXY_FILE: ["space", "trial_id", "flops", "short_error", "long_error", "epochs", "seconds"],
        study.SEED_FILE: ["space", "trial_id", "flops", "error", "error_seed2", "seed2", "epochs", "seconds"],
    }
    for name, columns in old_columns.items():
        _write_rows(tmp_path / name, [{c: r[c] for c in columns} for r in csv_rows(docs / name)])
    networks = {(k, r["trial_id"]): {"values": {}, "space": {}} for k, v in trials.items() for r in v}
    tasks = []
    monkeypatch.setattr(trial_workers, "run_tasks", lambda t, setup, **kwargs: tasks.extend(t))
    config = dataclasses.replace(study.QUICK_CONFIG, out=str(tmp_path))
    seed, proxy, confirm = study.run_checks(
        str(tmp_path), trials, networks, 20, 30, setup=None, config=config, confirm=study.CONFIRM
    )
    kinds = sorted({(t["kind"], t["epochs"]) for t in tasks})
    assert kinds == [("confirm", 20), ("proxy2", 20)]  # nothing of the old tables is trained again
    proxied = {(r["space"], r["trial_id"]) for r in proxy["rows"]}
    assert {(t["row"]["space"], t["row"]["trial_id"]) for t in tasks if t["kind"] == "proxy2"} == proxied
    reused = [r for r in confirm["rows"] if (r["space"], r["trial_id"]) in proxied]
    assert len(confirm["rows"]) == 30 and len(reused) == 10 and all(r["long_error"] is not None for r in reused)
    assert sum(t["kind"] == "confirm" for t in tasks) == 20 and seed["k"] == 20 and proxy["k"] == 30


def test_per_block_widths():
    assert report.per_block_widths({"depth_1": "2", "width_1": "16", "depth_2": "1", "width_2": "48"}) == [16, 16, 48]


def test_bad_input_raises_clear_errors(tmp_path):
    cases = [
        (dict(spaces=["AnyNetX_A", "AnyNetX_Z"]), "unknown design space 'AnyNetX_Z'"),
        (dict(spaces=["AnyNetX_A", "AnyNetX_A"]), "twice"),
        (dict(spaces=[]), "empty"),
        (dict(samples=1), "--samples"),
        (dict(epochs=0), "epochs"),
        (dict(flops="5M:1M"), "flops window must be"),
        (dict(flops=(2e6, 1e6)), "empty"),
        (dict(proxy_check=2), "--proxy-check"),
        (dict(seed_check=2), "--seed-check"),
        (dict(seed_check=-1), "--seed-check"),
        (dict(confirm=2), "--confirm"),
        (dict(confirm=-1), "--confirm"),
        (dict(fail_above=0), "--fail-above"),
        (dict(fail_above=1.5), "--fail-above"),
        (dict(tuner="hyperband"), "at random"),
        (dict(max_trial=3), "unknown search settings max_trial"),
    ]
    for kwargs, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            study.run_study(out=str(tmp_path / "bad"), **kwargs)


def test_cli_bad_input_is_one_line(tmp_path):
    result = run_cli("study", "--spaces", "AnyNetX_A,Foo", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Foo" in errors[0], result.stderr


def test_train_examples_flag_reaches_the_config_and_a_bad_value_is_one_line(tmp_path, capsys):
    from apps import cli, flags
    from keras_regnet import search, trial_workers

    parser = cli.build_parser()
    for command in ("study", "search"):
        settings = flags.search_settings(parser.parse_args([command, "--train-examples", "2000"]))
        assert settings["train_examples"] == 2000
        assert search.configure(study.STUDY_CONFIG, settings).train_examples == 2000
        assert "train_examples" not in flags.search_settings(parser.parse_args([command]))  # default: all
    assert study.STUDY_CONFIG.train_examples == 6000 and study.QUICK_CONFIG.train_examples is None
    config = search.configure(study.QUICK_CONFIG, dict(train_examples=200))
    worker_ds = trial_workers.load_data(search.worker_setup(config), seed=7)[2]  # what each trial trains on
    assert worker_ds.num_examples == config.load_data().num_examples and worker_ds.num_examples["train"] == 200
    for command in ("study", "search"):
        assert cli.main([command, "--train-examples", "5", "--out", str(tmp_path / command)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--train-examples" in err and "got 5" in err, err
        with pytest.raises(SystemExit) as info:  # not an int: argparse's usage error
            cli.main([command, "--train-examples", "2.5"])
        assert info.value.code == 2 and "--train-examples" in capsys.readouterr().err
    # Larger than digits' train split: the loader's message, before any training.
    big = ["study", "--quick", "--train-examples", "5000", "--out", str(tmp_path / "big"), "--samples", "2"]
    assert cli.main(big) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "`train_examples` must be at most" in err and "5000" in err, err
    assert not (tmp_path / "big").exists()


# --------------------------------------------------------------------------- end to end (tiny training)


def tiny_spaces(*names):
    """Narrowed spaces: shallow and thin, so a trial trains in seconds."""
    return [design_spaces.get(n, depth=(1, 1), width=(8, 32)) for n in names]


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    kwargs = dict(
        spaces=tiny_spaces("AnyNetX_C", "AnyNetX_D"),
        samples=3,
        epochs=2,  # two: a study validates only after the last epoch, and the oracle must take that
        flops=(1e5, 1e6),
        image_size=32,
        batch_size=64,
        out=str(out),
        seed=0,
        proxy_check=3,
        seed_check=3,
        confirm=3,  # every network of the pair (the proxy check's reused): 3 more long trainings
        fail_above=0.5,
        workers=2,
        config=study.QUICK_CONFIG,
    )
    start = time.perf_counter()
    summary = study.run_study(**kwargs)
    return out, kwargs, summary, time.perf_counter() - start


def test_study_end_to_end_numbers_match_trials(tiny_study):
    out, _, summary, _ = tiny_study
    errs, flops = {}, {}
    for name in ("AnyNetX_C", "AnyNetX_D"):
        rows = csv_rows(out / name / "trials.csv")
        assert len(rows) == 3 and {r["status"] for r in rows} == {"COMPLETED"}
        errs[name] = [float(r["val_error"]) for r in rows]  # the final epoch's error, not the best
        flops[name] = [float(r["flops"]) for r in rows]
        assert all(1e5 <= f <= 1e6 for f in flops[name])
    saved = json.loads((out / "summary.json").read_text())
    for name, e in errs.items():
        v = saved["spaces"][name]
        assert v["n"] == 3 and v["min"] == pytest.approx(min(e)) and v["median"] == pytest.approx(np.median(e))
        assert v["edf"] == pytest.approx(list(analysis.edf(e, at=saved["error_levels"])))
    (c,) = saved["comparisons"]
    ref = stats.ks_2samp(errs["AnyNetX_C"], errs["AnyNetX_D"])
    assert (c["a"], c["b"]) == ("AnyNetX_C", "AnyNetX_D")
    assert c["ks_d"] == pytest.approx(ref.statistic) and c["ks_p"] == pytest.approx(ref.pvalue)
    text = (out / "report.md").read_text()
    assert "| AnyNetX_C vs AnyNetX_D | " in text and f"{c['ks_d']:.3f} | {c['ks_p']:.3g}" in text
    for key in ("panels", "edfs", "flops", "staircase", "proxy"):
        _png_ok(out / report.FIGURES[key])


def test_study_proxy_check(tiny_study):
    out, _, summary, _ = tiny_study
    rows = csv_rows(out / study.PROXY_FILE)
    assert len(rows) == 3 and all(r["epochs"] == "8" for r in rows)
    short = [float(r["short_error"]) for r in rows]
    long = [float(r["long_error"]) for r in rows]
    proxy = summary["proxy_check"]
    ref = stats.spearmanr(short, long)
    if math.isnan(ref.statistic):
        assert math.isnan(proxy["spearman"])
    else:
        assert proxy["spearman"] == pytest.approx(ref.statistic)
    assert "## Proxy check" in (out / "report.md").read_text()


def test_study_seed_check_and_failed_share(tiny_study):
    out, _, summary, _ = tiny_study
    rows = csv_rows(out / study.SEED_FILE)
    assert len(rows) == 3 and all(r["epochs"] == "2" for r in rows)
    table = {(r["space"], r["trial_id"]): r for r in csv_rows(out / study.TRIALS_FILE)}
    for row in rows:  # the first error is the study's own; the second comes from another seed
        trial = table[(row["space"], row["trial_id"])]
        assert float(row["error"]) == pytest.approx(float(trial["val_error"]))
        assert row["seed2"] != trial["seed"]
    first = [float(r["error"]) for r in rows]
    second = [float(r["error_seed2"]) for r in rows]
    check = summary["seed_check"]
    assert check["k"] == 3
    ref = stats.spearmanr(first, second).statistic
    assert (math.isnan(ref) and math.isnan(check["spearman"])) or check["spearman"] == pytest.approx(ref)
    assert check["seed_sd"] == pytest.approx(np.sqrt(np.mean((np.array(first) - second) ** 2) / 2))
    saved = json.loads((out / "summary.json").read_text())
    assert saved["fail_above"] == 0.5
    for name in ("AnyNetX_C", "AnyNetX_D"):
        errors = [float(r["val_error"]) for r in csv_rows(out / name / "trials.csv")]
        assert saved["spaces"][name]["failed_share"] == pytest.approx(np.mean([e > 0.5 for e in errors]))


def test_same_study_gives_the_same_errors_with_other_workers(tiny_study, tmp_path):
    """A trial's weights and data order come from the study seed and the trial alone."""
    out, kwargs, _, _ = tiny_study
    again = tmp_path / "again"
    study.run_study(**dict(kwargs, out=str(again), workers=1, proxy_check=0, seed_check=0, confirm=0))
    first = {(r["space"], r["trial_id"]): r for r in csv_rows(out / study.TRIALS_FILE)}
    second = {(r["space"], r["trial_id"]): r for r in csv_rows(again / study.TRIALS_FILE)}
    assert first.keys() == second.keys() and len(first) == 6
    for key, row in first.items():
        assert second[key]["seed"] == row["seed"]
        assert float(second[key]["val_error"]) == pytest.approx(float(row["val_error"]), abs=1e-9), key


def test_study_second_long_seed_and_confirm(tiny_study):
    out, _, summary, _ = tiny_study
    table = {(r["space"], r["trial_id"]): r for r in csv_rows(out / study.TRIALS_FILE)}
    proxy = {(r["space"], r["trial_id"]): r for r in csv_rows(out / study.PROXY_FILE)}
    for key, row in proxy.items():  # every proxy network trained twice at 8 epochs, the second from another seed
        assert row["seconds_seed2"] != "" and row["seed2"] not in ("", table[key]["seed"])
    confirm = csv_rows(out / study.CONFIRM_FILE)
    assert len(confirm) == 6 and all(r["epochs"] == "8" for r in confirm)
    assert sorted(r["space"] for r in confirm) == ["AnyNetX_C"] * 3 + ["AnyNetX_D"] * 3
    shared = [r for r in confirm if (r["space"], r["trial_id"]) in proxy]
    assert len(shared) == 3  # the proxy check's networks of the pair, reused: the same training, not a new one
    for r in shared:
        twin = proxy[(r["space"], r["trial_id"])]
        assert (r["long_error"], r["seconds"]) == (twin["long_error"], twin["seconds"])
    for r in confirm:
        assert float(r["short_error"]) == pytest.approx(float(table[(r["space"], r["trial_id"])]["val_error"]))
    saved = json.loads((out / "summary.json").read_text())
    got = saved["confirm"]
    assert (got["a"], got["b"]) == ("AnyNetX_C", "AnyNetX_D")  # the last paper pair studied (no A, no RegNet here)
    assert got["result"] in study_checks.CONFIRM_RESULTS and saved["settings"]["confirm"] == 3
    long = {s: [float(r["long_error"]) for r in confirm if r["space"] == s] for s in ("AnyNetX_C", "AnyNetX_D")}
    ref = stats.ks_2samp(long["AnyNetX_C"], long["AnyNetX_D"])
    assert got["long"]["ks_d"] == pytest.approx(ref.statistic) and got["long"]["ks_p"] == pytest.approx(ref.pvalue)
    assert got["long"]["epochs"] == 8 and got["short"]["epochs"] == 2
    check = saved["proxy_check"]
    rows = list(proxy.values())
    rho = stats.spearmanr([float(r["long_error"]) for r in rows], [float(r["long_error_seed2"]) for r in rows])[0]
    assert check["k_long_seeds"] == 3 and "case" in check and "corrected" in check
    assert (math.isnan(rho) and math.isnan(check["long_seed_spearman"])) or check["long_seed_spearman"] == rho
    text = (out / "report.md").read_text()
    assert "## The headline comparison at 8 epochs" in text and "| 8 epochs | 3 vs 3 |" in text
    assert "Seed Spearman at each schedule" in text or "case not determined" in check["case_text"]
    assert summary["confirm"]["result"] == got["result"]


def test_study_confirm_resumes_after_a_kill_without_retraining(tiny_study, tmp_path, monkeypatch):
    """The study killed after one of its last long trainings: the rerun trains only what is left, to the same errors."""
    from keras_regnet import trial_workers

    out, kwargs, _, _ = tiny_study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    key = lambda r: (r["space"], str(r["trial_id"]))  # noqa: E731
    proxy_rows, confirm_rows = csv_rows(copy / study.PROXY_FILE), csv_rows(copy / study.CONFIRM_FILE)
    proxied = {key(r) for r in proxy_rows}
    forget = [r for r in confirm_rows if key(r) not in proxied][:2]  # two of confirm's own trainings ...
    _write_rows(copy / study.CONFIRM_FILE, [r for r in confirm_rows if r not in forget])
    _write_rows(  # ... and one second seed of the proxy check: as if the study had been killed before them
        copy / study.PROXY_FILE,
        [dict(r, long_error_seed2="", seed2="", seconds_seed2="") if i == 0 else r for i, r in enumerate(proxy_rows)],
    )
    expected = {("confirm", key(r)) for r in forget} | {("proxy2", key(proxy_rows[0]))}
    real, runs = trial_workers.run_tasks, []

    def run_tasks(tasks, setup, *, workers, on_result, kill_after=None, **options):
        runs.append({(t["kind"], key(t["row"])) for t in tasks})

        def on_one(task, result):
            on_result(task, result)
            if kill_after is not None:
                raise KeyboardInterrupt("killed")  # the study dies right after recording one training

        return real(tasks, setup, workers=workers, on_result=on_one, **options)

    monkeypatch.setattr(trial_workers, "run_tasks", lambda *a, **k: run_tasks(*a, kill_after=1, **k))
    with pytest.raises(KeyboardInterrupt):
        study.run_study(**dict(kwargs, out=str(copy)))
    assert runs[0] == expected
    monkeypatch.setattr(trial_workers, "run_tasks", run_tasks)
    summary = study.run_study(**dict(kwargs, out=str(copy)))
    assert len(runs[1]) == 2 and runs[1] < expected  # the one recorded before the kill is not trained again
    study.run_study(**dict(kwargs, out=str(copy)))
    assert len(runs) == 2  # a third run trains nothing (run_tasks is not even called)
    for name in (study.CONFIRM_FILE, study.PROXY_FILE):  # the same seeds give the same errors as the unkilled study
        before = {key(r): r for r in csv_rows(out / name)}
        after = {key(r): r for r in csv_rows(copy / name)}
        assert before.keys() == after.keys()
        for k, row in before.items():
            for column in ("long_error", "long_error_seed2"):
                if column in row:
                    assert float(after[k][column]) == pytest.approx(float(row[column]), abs=1e-9), (name, k, column)
    saved = json.loads((out / "summary.json").read_text())["confirm"]
    assert summary["confirm"]["result"] == saved["result"]
    assert summary["confirm"]["long"]["ks_d"] == pytest.approx(saved["long"]["ks_d"])


def _write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_study_resumes_without_retraining(tiny_study, capsys):
    out, kwargs, _, first_seconds = tiny_study
    before = {name: csv_rows(out / name / "trials.csv") for name in ("AnyNetX_C", "AnyNetX_D")}
    proxy_before = csv_rows(out / study.PROXY_FILE)
    capsys.readouterr()
    study.run_study(**kwargs)
    printed = capsys.readouterr().out
    assert not [line for line in printed.splitlines() if "check " in line or " trial " in line], printed
    assert {name: csv_rows(out / name / "trials.csv") for name in before} == before
    assert csv_rows(out / study.PROXY_FILE) == proxy_before
    with pytest.raises(ValueError, match="epochs"):
        study.run_study(**dict(kwargs, epochs=3))


# --------------------------------------------------------------------------- slow: the real spaces, CLI, distributed


@pytest.mark.slow
def test_cli_study_on_the_paper_spaces(tmp_path):
    out = tmp_path / "cli"
    result = run_cli(
        "study",
        "--quick",
        "--spaces",
        "AnyNetX_E,RegNet",
        "--samples",
        "3",
        "--epochs",
        "1",
        "--flops",
        "0.3M:1M",
        "--batch-size",
        "64",
        "--seed-check",
        "0",
        "--proxy-check",
        "0",
        "--confirm",
        "0",
        "--out",
        str(out),
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[1/2] AnyNetX_E" in result.stdout and "[2/2] RegNet" in result.stdout
    assert "AnyNetX_E vs RegNet: KS D=" in result.stdout
    assert (out / "report.md").exists()


def _free_port_pair():
    while True:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@pytest.mark.slow
def test_distributed_study_chief_and_worker(tmp_path):
    out, port = tmp_path / "dist", _free_port_pair()
    common = [
        sys.executable,
        "-m",
        "apps.cli",
        "study",
        "--quick",
        "--spaces",
        "AnyNetX_D,AnyNetX_E",
        "--samples",
        "2",
        "--epochs",
        "1",
        "--flops",
        "0.3M:1M",
        "--batch-size",
        "64",
        "--seed-check",
        "0",
        "--proxy-check",
        "0",
        "--confirm",
        "0",
        "--out",
        str(out),
        "--oracle-port",
        str(port),
    ]
    run_chief_and_workers(common, ("w1",), tmp_path, timeout=1800)
    for name in ("AnyNetX_D", "AnyNetX_E"):
        rows = csv_rows(out / name / "trials.csv")
        assert len(rows) == 2 and {r["status"] for r in rows} == {"COMPLETED"}
    worker_log = (tmp_path / "w1.log").read_text()
    assert sum(line.startswith(("[AnyNetX_D] trial ", "[AnyNetX_E] trial ")) for line in worker_log.splitlines()) == 4
    assert (out / "report.md").exists()


class _Loaded(Exception):
    """Raised where the study would load its data: the config it resolved, nothing trained or written."""


def test_the_default_study_is_fashion_mnist_and_quick_is_digits(tmp_path, monkeypatch):
    """No flags: Fashion-MNIST, 6,000 trained on, failed above 0.5; --quick: digits' split, 0.2; a dataset
    other than the config's drops the config's subset unless train_examples is given, from the command
    and from Python alike."""
    from apps import cli
    from keras_regnet import search

    def loaded(config):
        raise _Loaded(config)

    monkeypatch.setattr(search.SearchConfig, "load_data", loaded)
    configs = []
    out = ["--out", str(tmp_path / "s")]
    for argv in ([], ["--quick"], ["--dataset", "mnist"], ["--dataset", "mnist", "--train-examples", "300"]):
        with pytest.raises(_Loaded) as caught:
            cli.main(["study", *argv, *out])
        configs.append(caught.value.args[0])
    for kwargs in (
        dict(dataset="mnist"),
        dict(dataset="fashion_mnist"),
        dict(config=study.QUICK_CONFIG, dataset="mnist"),
    ):
        with pytest.raises(_Loaded) as caught:
            study.run_study(out=str(tmp_path / "s"), **kwargs)
        configs.append(caught.value.args[0])
    assert [(c.dataset, c.train_examples, c.validation_fraction) for c in configs] == [
        ("fashion_mnist", 6000, 0.1),
        ("digits", None, 0.35),
        ("mnist", None, 0.1),
        ("mnist", 300, 0.1),
        ("mnist", None, 0.1),
        ("fashion_mnist", 6000, 0.1),
        ("mnist", None, 0.35),
    ]
    assert not (tmp_path / "s").exists()
    assert study.default_fail_above("fashion_mnist") == 0.5 and study.default_fail_above("digits") == 0.2


def test_the_default_study_without_the_files_is_one_line_and_writes_nothing(tmp_path, nowhere, capsys):
    from apps import cli

    out = tmp_path / "study"
    assert cli.main(["study", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-regnet study: error: fashion_mnist: "), lines
    assert "apt-get install dataset-fashion-mnist" in lines[0] and str(nowhere["system"]) in lines[0], lines
    assert not out.exists()
