"""Whole study trials under other execution engines: where a trial's seconds go, and which engine wins.

Runs the first --nets networks of each space in `docs/study-quick/trials.csv` (the
committed --quick study, the default until 2026-12-07) through `trial_workers._run_trial`, exactly as a
study worker does (study recipe, one thread, the worker's grappler options),
once per engine, each engine in its own fresh process:

  tensorflow     TensorFlow's default for this CPU (what a study worker runs): oneDNN off on
                 AVX2-only x86 (AMD Zen 2/3), on with AVX-512 VNNI/BF16 or AMX (Intel, AMD Zen 4)
  onednn         TF_ENABLE_ONEDNN_OPTS=1: oneDNN's kernels forced on
  eigen          TF_ENABLE_ONEDNN_OPTS=0: oneDNN forced off (Eigen's kernels)
  remapper-off   the default with grappler's remapper pass off as well
  jax            KERAS_BACKEND=jax: Keras' jitted train step, XLA's CPU kernels
  stock          TensorFlow with every speed-up of this package undone: Keras' own batch norm,
                 1x1 convolutions and SGD, grouped convolutions as Keras ops one group at a
                 time (stock Keras' grouped conv cannot train without oneDNN), the validation
                 pass by `model.evaluate`, grappler's defaults

Per network and engine it prints the whole trial's seconds, when the first
epoch ended (build, tracing or compilation, graph optimisation, 1 epoch), the
mean of the later epochs, the final validation pass and the error, beside
the error the study recorded (the default engine reproduces it exactly; the
others round differently, or draw other initial weights under JAX).

For each engine after the first it also prints the paired error
differences against the first engine (mean and SD over the networks): how
far other rounding alone moves a trial's error.

    python bench/trial_engines.py [--nets 1] [--engines tensorflow,onednn,eigen,remapper-off,jax,stock]
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIALS = os.path.join(ROOT, "docs", "study-quick", "trials.csv")
SPACES = ("AnyNetX_A", "AnyNetX_E", "RegNet")
ENGINES = {
    "tensorflow": {},
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "remapper-off": {"BENCH_GRAPPLER_OFF": "remapping"},
    "jax": {"KERAS_BACKEND": "jax"},
    "stock": {"BENCH_STOCK": "1"},
}
# trials.csv columns that are not design values
NOT_VALUES = {
    "space",
    "trial_id",
    "val_error",
    "seed",
    "flops",
    "params",
    "acts",
    "epochs",
    "seconds",
    "status",
    "worker_peak_rss_mb",
}


def _value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def study_networks(nets, spaces):
    """(space, trial id, design values, the study's error) of the first `nets` networks of each space."""
    with open(TRIALS) as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for space in spaces:
        for row in [r for r in rows if r["space"] == space][:nets]:
            values = {k: _value(v) for k, v in row.items() if k not in NOT_VALUES and v != ""}
            chosen.append((space, row["trial_id"], values, float(row["val_error"])))
    return chosen


def undo_speed_ups(patch=setattr):
    """Train as stock Keras would: the package's faster layers, optimizer and validation pass undone.

    `patch(owner, name, value)` makes each replacement (pytest's
    `monkeypatch.setattr` undoes them after a test).
    """
    import keras

    from keras_regnet import blocks, layers, training, trial_workers

    patch(blocks, "FusedBatchNormalization", keras.layers.BatchNormalization)
    patch(blocks, "PointwiseConv2D", keras.layers.Conv2D)
    patch(layers.GroupedConv2D, "_tf_convolution", lambda self, inputs, kernel: self._split_convolution(inputs, kernel))

    def stock_sgd(config, steps_per_epoch):
        return keras.optimizers.SGD(
            learning_rate=training.make_learning_rate(config, steps_per_epoch),
            momentum=config.momentum,
            weight_decay=config.weight_decay or None,
        )

    patch(training, "make_optimizer", stock_sgd)
    patch(trial_workers, "final_validation", lambda model, dataset: model.evaluate(dataset, verbose=0))


def child(nets, spaces):
    """Run the trials in this process (the engine is set by the environment); one JSON line each."""
    sys.path.insert(0, ROOT)
    import dataclasses

    from keras_regnet import trial_workers

    trial_workers.configure_tensorflow(1)  # as a study worker
    from keras_regnet import startup

    print("STATE " + startup.describe_onednn(), flush=True)
    import tensorflow as tf

    off = {name: False for name in os.environ.get("BENCH_GRAPPLER_OFF", "").split(",") if name}
    tf.config.optimizer.set_experimental_options(off)  # more passes off, on top of the worker's
    ignored = sorted(set(off) - set(tf.config.optimizer.get_experimental_options()))
    if ignored:  # TensorFlow drops unknown option names silently
        sys.exit(f"grappler does not know {ignored}")
    if os.environ.get("BENCH_STOCK"):
        undo_speed_ups()
        tf.config.optimizer.set_experimental_options({"layout_optimizer": True, "function_optimization": True})
    from keras_regnet import design_spaces, search, study

    setup = dataclasses.replace(search.worker_setup(study.QUICK_CONFIG), final_validation_only=True, threads=1)
    for space, trial_id, values, study_error in study_networks(nets, spaces):
        window = design_spaces.get(space, flops=study.FLOPS, input_shape=(32, 32, 1), classes=10)
        task = {"trial_id": trial_id, "values": values, "space": window.to_dict(), "epochs": 5}
        began = time.perf_counter()
        result = trial_workers._run_trial(task, setup)
        total = time.perf_counter() - began
        history = result["history"]
        elapsed = history.get("seconds") or [float("nan")]
        accuracy = (history.get("val_accuracy") or [None])[-1]
        later = [b - a for a, b in zip(elapsed, elapsed[1:])]
        row = {
            "space": space,
            "trial": trial_id,
            "status": result["status"],
            "total": total,
            "first_epoch_end": elapsed[0],
            "later_epoch": sum(later) / len(later) if later else float("nan"),
            "validation": total - elapsed[-1],
            "error": None if accuracy is None else 1 - accuracy,
            "study_error": study_error,
        }
        print("ROW " + json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=1, help="networks per space")
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spaces = args.spaces.split(",")
    if args.child:
        return child(args.nets, spaces)
    engines = args.engines.split(",")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        sys.exit(f"unknown engines {unknown}; choose from {', '.join(ENGINES)}")
    print(f"study trials (docs/study-quick/trials.csv, first {args.nets} of {', '.join(spaces)}), one thread, seconds")
    print("  engine        network          total  1st epoch ends  later epoch  validation  error (study's)")
    totals, errors = {}, {}
    for engine in engines:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **ENGINES[engine]}
        command = [sys.executable, os.path.abspath(__file__), "--child", "--nets", str(args.nets)]
        command += ["--spaces", args.spaces]
        proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        rows = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        if proc.returncode != 0 or not rows:
            print(f"  {engine}: failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
            continue
        for line in proc.stdout.splitlines():
            if line.startswith("STATE "):
                print(f"  {engine}: {line[6:]}")
        for r in rows:
            error = "-" if r["error"] is None else f"{r['error']:.4f}"
            print(
                f"  {engine:13s} {r['space'] + ' ' + r['trial']:15s} {r['total']:7.1f} {r['first_epoch_end']:15.1f} "
                f"{r['later_epoch']:12.2f} {r['validation']:11.2f}  {error} ({r['study_error']:.4f})",
                flush=True,
            )
        totals[engine] = sum(r["total"] for r in rows)
        errors[engine] = {(r["space"], r["trial"]): r["error"] for r in rows}
    if "tensorflow" in totals:
        print(
            "  sum of trial seconds: "
            + ", ".join(f"{e} {t:.1f} ({t / totals['tensorflow']:.2f}x)" for e, t in totals.items())
        )
    first = next(iter(errors), None)
    for engine in list(errors)[1:]:
        pairs = [
            (errors[engine][key], error)
            for key, error in errors[first].items()
            if error is not None and errors[engine].get(key) is not None
        ]
        if len(pairs) >= 2:
            diffs = [a - b for a, b in pairs]
            mean = sum(diffs) / len(diffs)
            sd = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5
            print(
                f"  error {engine} - {first}: mean {mean:+.4f}, SD {sd:.4f}, "
                f"largest |difference| {max(abs(d) for d in diffs):.4f} ({len(diffs)} networks)"
            )


if __name__ == "__main__":
    main()
