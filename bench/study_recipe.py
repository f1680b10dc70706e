"""Choose the study's recipe by whether its errors can rank networks, on a fixed panel from all six spaces.

Every setting trains the same panel of sampled networks (P per space, 0.5M-2M
flops at 32x32 digits) three ways: with the trial's seed, with a second seed,
and for 4x the epochs from the trial's seed. Each setting is judged by the
criteria stated before looking (the study-truth issue), never by the verdicts
it would give:

  (a) failed share: at most 5% of trainings in any space end above 0.2 error;
  (b) seed check: Spearman of the two seeds' errors >= 0.7;
  (c) proxy check: Spearman of short and 4x-longer errors >= 0.7;

then by seconds per training. Settings (name: what changes):

  before      today's recipe without zero-init (validation 10% = 179 images scored, batch 32, lr 0.05)
              -- trained once per network: only (a) is measured
  zero-init   the same with zero-init residual branches (the models' default now)
  half        zero-init; half of digits trained on (validation 35% + test 15% scored: 898 images)
  half-b64    half, batch 64 and lr 0.1 (half the steps, cheaper)

    python bench/study_recipe.py [--per-space 4] [--settings before,zero-init,half,half-b64] [--workers 2]
"""

import argparse
import dataclasses
import functools
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_regnet import analysis, design_spaces, search, startup, study, trial_workers  # noqa: E402

FAIL_ABOVE = 0.2
SETTINGS = {
    "before": dict(validation_fraction=0.1, score_split="validation", batch_size=32, lr=0.05, zero_init_last=False),
    "zero-init": dict(validation_fraction=0.1, score_split="validation", batch_size=32, lr=0.05),
    "half": dict(validation_fraction=0.35, score_split="validation+test", batch_size=32, lr=0.05),
    "half-b64": dict(validation_fraction=0.35, score_split="validation+test", batch_size=64, lr=0.1),
}


def panel(per_space, seed=0):
    """(space name, trial id, values, space dict): the same networks for every setting."""
    from keras_regnet import tuning

    networks = []
    for name in study.SPACES:
        space = design_spaces.get(name, flops=study.FLOPS, input_shape=(32, 32, 1), classes=10)
        rng = np.random.default_rng([seed, study.SPACES.index(name)])
        for i in range(per_space):
            values = tuning.trial_values(space, *space.sample_with_params(rng))
            networks.append((name, f"{i:02d}", values, space.to_dict()))
    return networks


def run_setting(name, networks, epochs, workers):
    options = dict(SETTINGS[name])
    zero_init = options.pop("zero_init_last", True)
    config = dataclasses.replace(study.STUDY_CONFIG, epochs=epochs, workers=workers, **options)
    setup = dataclasses.replace(search.worker_setup(config), final_validation_only=True)
    runs = [("short", 0, epochs)] if name == "before" else [("short", 0, epochs), ("seed2", 1, epochs)]
    if name != "before":
        runs.append(("long", 0, study.PROXY_FACTOR * epochs))
    tasks = []
    for space, trial_id, values, space_dict in networks:
        for run, replicate, run_epochs in runs:
            task = {
                "key": (space, trial_id, run),
                "trial_id": trial_id,
                "values": values,
                "space": space_dict,
                "epochs": run_epochs,
                "seed": trial_workers.trial_seed(config.seed, f"{space}/{trial_id}", replicate),
                "zero_init_last": zero_init,
            }
            if run == "long":
                task["train_config"] = {"epochs": run_epochs}
            tasks.append(task)
    tasks.sort(key=lambda t: -t["epochs"])  # long ones first: the pool ends evenly
    errors, seconds = {}, {}

    def on_result(task, result):
        accuracy = (result.get("history") or {}).get("val_accuracy", [None])[-1]
        errors[task["key"]] = np.nan if accuracy is None else 1.0 - accuracy
        seconds[task["key"]] = result.get("seconds", np.nan)

    began = time.perf_counter()
    trial_workers.run_tasks(tasks, setup, workers=workers, on_result=on_result)
    wall = time.perf_counter() - began
    keys = [(s, t) for s, t, _, _ in networks]
    short = np.array([errors[(*k, "short")] for k in keys])
    failed = {
        space: float(np.mean([e > FAIL_ABOVE or np.isnan(e) for (s, _), e in zip(keys, short) if s == space]))
        for space in study.SPACES
    }
    row = {
        "setting": name,
        "n": len(keys),
        "max_failed": max(failed.values()),
        "failed": failed,
        "median_error": float(np.nanmedian(short)),
        "seconds_per_training": float(np.mean([seconds[(*k, "short")] for k in keys])),
        "wall_s": wall,
    }
    if name != "before":
        seed2 = np.array([errors[(*k, "seed2")] for k in keys])
        long = np.array([errors[(*k, "long")] for k in keys])
        ok = ~np.isnan(short) & ~np.isnan(seed2) & ~np.isnan(long)
        row["seed_rho"] = analysis.spearman(short[ok], seed2[ok])[0]
        row["proxy_rho"] = analysis.spearman(short[ok], long[ok])[0]
        row["seed_sd"] = float(np.sqrt(np.mean((short[ok] - seed2[ok]) ** 2) / 2))
        row["between_sd"] = float(np.std((short[ok] + seed2[ok]) / 2, ddof=1))
        row["long_seconds"] = float(np.mean([seconds[(*k, "long")] for k in keys]))
    return row


def _cell(row, key, fmt):
    return format(row[key], fmt) if key in row else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-space", type=int, default=4)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--epochs", type=int, default=study.STUDY_CONFIG.epochs)
    parser.add_argument("--workers", type=int, default=trial_workers.default_workers())
    args = parser.parse_args()
    networks = panel(args.per_space)
    print("trial workers:", startup.describe_onednn_of("trial"), time.strftime("%Y-%m-%d"), flush=True)
    print(f"panel: {len(networks)} networks ({args.per_space} per space), {args.epochs} epochs, {args.workers} workers")
    rows = []
    for name in args.settings.split(","):
        row = run_setting(name, networks, args.epochs, args.workers)
        rows.append(row)
        failed = ", ".join(f"{k} {v:.0%}" for k, v in row["failed"].items())
        print(f"{name}: {row}", flush=True)
        print(f"  failed share per space: {failed}", flush=True)
    print(
        "\n| setting | (a) max failed share | (b) seed rho | (c) proxy rho | seed SD | between SD | median error "
        "| s per training | s per 4x training | wall s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = functools.partial(_cell, r)
        print(
            f"| {r['setting']} | {r['max_failed']:.0%} | {f('seed_rho', '.2f')} | {f('proxy_rho', '.2f')} | "
            f"{f('seed_sd', '.4f')} | {f('between_sd', '.4f')} | {r['median_error']:.4f} | "
            f"{r['seconds_per_training']:.1f} | {f('long_seconds', '.1f')} | {r['wall_s']:.0f} |"
        )
    meets = [
        r for r in rows if "seed_rho" in r and r["max_failed"] <= 0.05 and min(r["seed_rho"], r["proxy_rho"]) >= 0.7
    ]
    if meets:
        best = min(meets, key=lambda r: r["seconds_per_training"])
        print(f"\nmeets (a)-(c): {', '.join(r['setting'] for r in meets)}; cheapest: {best['setting']}")
    else:
        print("\nno setting meets (a)-(c)")


if __name__ == "__main__":
    main()
