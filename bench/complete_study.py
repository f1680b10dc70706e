"""Add the checks a committed study predates to its folder, training only what its tables lack.

`docs/study-quick/` keeps a study's tables (trials.csv, seed_check.csv,
proxy_check.csv), not its KerasTuner state, so `keras-regnet study` cannot
resume it. This rebuilds each network from its trials.csv row (its flops must
match), runs `study.run_checks` in the folder (the second long seed of the
proxy check and `--confirm`; every training already in its tables is
reused) and rewrites report.md, summary.json and the figures. The recipe is
`keras-regnet study --quick`'s (the study in docs/study-quick/ is that recipe);
new trainings run on this machine (the CPU and oneDNN state are printed and
recorded in summary.json's settings).

    python bench/complete_study.py [--out docs/study-quick] [--confirm 15] [--workers 2]
"""

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_regnet import startup  # noqa: E402  (before TensorFlow: the trial job's oneDNN choice)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_engines import _value  # noqa: E402  (a trials.csv cell as int, float or text)


def networks_and_trials(out, config):
    """({(space, trial_id): {values, space}}, {space: trial rows}) from OUT/trials.csv; flops checked."""
    import numpy as np

    from keras_regnet import complexity, design_spaces, study, tuning

    with open(os.path.join(out, study.TRIALS_FILE), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    networks, trials = {}, {}
    for name in study.SPACES:
        space = design_spaces.get(name, flops=study.FLOPS, input_shape=(32, 32, 1), classes=10)
        names = tuning.trial_values(space, *space.sample_with_params(np.random.default_rng(0)))
        for row in (r for r in rows if r["space"] == name):
            values = {k: _value(row[k]) for k in names if row.get(k) not in (None, "")}
            flops = complexity.count(tuning.spec_from_values(values), input_shape=(32, 32, 1), classes=10).flops
            if int(flops) != int(row["flops"]):
                raise SystemExit(f"{name} trial {row['trial_id']}: rebuilt flops {flops} != {row['flops']}")
            networks[(name, row["trial_id"])] = {"values": values, "space": json.loads(json.dumps(space.to_dict()))}
            trials.setdefault(name, []).append(dict(row, val_error=float(row["val_error"]), flops=float(row["flops"])))
    return networks, trials


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/study-quick")
    parser.add_argument("--confirm", type=int, default=15)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    startup.prepare("trial")
    from keras_regnet import report, search, study

    with open(os.path.join(args.out, "summary.json"), encoding="utf-8") as f:
        settings = json.load(f)["settings"]
    config = dataclasses.replace(study.QUICK_CONFIG, out=args.out, workers=args.workers)
    if (settings["dataset"], settings["epochs"], settings["trained_images"]) != ("digits", config.epochs, 899):
        raise SystemExit(f"{args.out} is not a study of --quick's recipe: {settings}")
    print("trial workers:", startup.describe_onednn_of("trial"), time.strftime("%Y-%m-%d"), flush=True)
    networks, trials = networks_and_trials(args.out, config)
    setup = dataclasses.replace(search.worker_setup(config), final_validation_only=True, threads=1)
    start = time.perf_counter()
    seed, proxy, confirmed = study.run_checks(
        args.out,
        trials,
        networks,
        settings["seed_check"],
        settings["proxy_check"],
        setup=setup,
        config=config,
        confirm=args.confirm,
    )
    settings.update(
        confirm=args.confirm,
        checks_completed=time.strftime("%Y-%m-%d"),
        checks_seconds=round(time.perf_counter() - start, 1),
        checks_machine=startup.describe_onednn_of("trial"),
    )
    summary = report.write_report(args.out, trials, settings, proxy=proxy, seed_check=seed, confirm=confirmed)
    for line in report.verdict_lines(summary):
        print(line)
    print(f"checks: {settings['checks_seconds']:.0f} s; report: {os.path.join(args.out, 'report.md')}")


if __name__ == "__main__":
    main()
