"""How much a study's errors change when a training reruns on another machine, against its seed noise.

A study that spans sittings can span machines (each session here gets a
fresh one, and their CPUs differ): its first seeds ran on one CPU, some
second seeds on another. Two machines round differently, which adds noise
of the seed kind to every check that pairs trainings across them. This
retrains the seed check's networks (default) with their *own* seed
(replicate 0, the study's trial) on this machine at the study's epochs and
prints, in one run: how many errors come out identical, the SD of one
training's machine-to-machine difference beside the seed check's seed noise
SD, and the seed check's Spearman recomputed with both seeds from this
machine (where the second seeds also ran here) beside the study's.

    TF_ENABLE_ONEDNN_OPTS=1 python bench/machine_noise.py [--out docs/study] [--workers 2]
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
from complete_study import networks_and_trials  # noqa: E402  (rebuilds each network from trials.csv)


def paired(a, b):
    """The study's own seed-check figures (report.seed_check_summary) for any two lists of errors."""
    from keras_regnet import report

    return report.seed_check_summary([{"error": x, "error_seed2": y} for x, y in zip(a, b)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/study")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    startup.prepare("trial")
    from keras_regnet import search, study, trial_workers

    with open(os.path.join(args.out, "summary.json"), encoding="utf-8") as f:
        settings = json.load(f)["settings"]
    # The recipe must be the one the folder's study ran, or the reruns would train on other data.
    recipes = {(c.dataset, c.epochs): c for c in (study.STUDY_CONFIG, study.QUICK_CONFIG)}
    recipe = recipes.get((settings["dataset"], settings["epochs"]))
    if recipe is None:
        raise SystemExit(f"{args.out}: a study of neither the default nor the --quick recipe: {settings}")
    config = dataclasses.replace(recipe, out=args.out, workers=args.workers)
    networks, _ = networks_and_trials(args.out, config)
    with open(os.path.join(args.out, study.SEED_FILE), newline="", encoding="utf-8") as f:
        pairs = list(csv.DictReader(f))
    print("this machine:", startup.describe_onednn_of("trial"), time.strftime("%Y-%m-%d"), flush=True)
    tasks = []
    for row in pairs:
        key = (row["space"], row["trial_id"])
        tasks.append(
            {
                "kind": "rerun",
                "row": row,
                "trial_id": row["trial_id"],
                "values": networks[key]["values"],
                "space": networks[key]["space"],
                "epochs": int(row["epochs"]),
                "seed": trial_workers.trial_seed(config.seed, row["trial_id"], 0),
            }
        )
    setup = dataclasses.replace(search.worker_setup(config), final_validation_only=True, threads=1)
    here = {}

    def on_result(task, result):
        row = task["row"]
        error = here[(row["space"], row["trial_id"])] = study._final_error(result)
        print(f"{row['space']} {row['trial_id']}: study {float(row['error']):.4f}, here {error:.4f}", flush=True)

    start = time.perf_counter()
    trial_workers.run_tasks(tasks, setup, workers=config.worker_count(), on_result=on_result)
    there = [float(r["error"]) for r in pairs]
    rerun = [here[(r["space"], r["trial_id"])] for r in pairs]
    second = [float(r["error_seed2"]) for r in pairs]
    same = sum(a == b for a, b in zip(there, rerun))
    print(f"\n{len(pairs)} networks, {args.out}, {config.epochs} epochs; {time.perf_counter() - start:.0f} s")
    print(f"identical errors (study's machine vs this one, same seed): {same}/{len(pairs)}")
    rows = [
        ("same seed, study's machine vs this one", paired(there, rerun)),
        ("seed check as the study paired them (seed 2 from wherever it ran)", paired(there, second)),
        ("seed check, both seeds on this machine", paired(rerun, second)),
    ]
    print(f"{'pairing':<68} {'noise SD':>9} {'Spearman':>9}  (report.seed_check_summary's formulas)")
    for name, figures in rows:
        print(f"{name:<68} {figures['seed_sd']:>9.4f} {figures['spearman']:>9.3f}")


if __name__ == "__main__":
    main()
