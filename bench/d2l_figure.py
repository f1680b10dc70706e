"""d2l's RegNetX32 experiment on Fashion-MNIST, ours beside d2l's published points: docs/d2l/.

Copies each run's `summary.json` and `history.csv` into docs/d2l/<name>/ and draws one figure of test and
validation accuracy per epoch for every run, beside the validation accuracy that d2l's executed notebook
of this chapter plots (PyTorch, one GPU; read off its figure, +-0.005; d2l validates on the test split).
Prints a table: per run, the final and best test accuracy, the wall time and the CPU.

    keras-regnet train --dataset fashion_mnist --recipe d2l --out runs/d2l-recipe
    keras-regnet train --dataset fashion_mnist --epochs 10 --test-each-epoch --out runs/package-recipe
    python bench/d2l_figure.py d2l=runs/d2l-recipe default=runs/package-recipe [--out docs/d2l]
"""

import argparse
import csv
import json
import os
import shutil
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# d2l's executed notebook (chapter "Designing Convolution Network Architectures", RegNetX32, 10 epochs):
# validation accuracy per epoch, read off its plot (each +-0.005).
D2L_VALIDATION_ACCURACY = (0.81, 0.86, 0.89, 0.85, 0.90, 0.87, 0.89, 0.90, 0.89, 0.91)


def read_run(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(folder, "history.csv"), newline="") as f:
        history = list(csv.DictReader(f))
    return summary, history


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="NAME=FOLDER", help="a finished `keras-regnet train` run")
    parser.add_argument("--out", default="docs/d2l")
    args = parser.parse_args()
    runs = {}
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep or not os.path.isfile(os.path.join(folder, "summary.json")):
            raise SystemExit(f"{item!r}: expected NAME=FOLDER of a finished run (with summary.json)")
        runs[name] = (folder, *read_run(folder))
    os.makedirs(args.out, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4.2))
    epochs = range(1, len(D2L_VALIDATION_ACCURACY) + 1)
    axes.errorbar(epochs, D2L_VALIDATION_ACCURACY, yerr=0.005, fmt="ks", ms=4, label="d2l (PyTorch), test split")
    print(f"{'run':10s} {'epochs':>6s} {'final test':>10s} {'best test':>9s} {'wall':>8s}  cpu, oneDNN")
    for (name, (folder, summary, history)), color in zip(runs.items(), ("tab:blue", "tab:orange", "tab:green")):
        target = os.path.join(args.out, name)
        os.makedirs(target, exist_ok=True)
        for file in ("summary.json", "history.csv"):
            shutil.copyfile(os.path.join(folder, file), os.path.join(target, file))
        x = [int(row["epoch"]) + 1 for row in history]
        test = [float(row["test_accuracy"]) for row in history if row.get("test_accuracy")]
        validation = [float(row["val_accuracy"]) for row in history]
        axes.plot(x, validation, "--", color=color, label=f"ours, recipe {name}: validation")
        if test:
            axes.plot(x[: len(test)], test, "-o", color=color, ms=4, label=f"ours, recipe {name}: test")
        onednn = summary.get("onednn") or {}
        print(
            f"{name:10s} {summary['epochs']:6d} {summary['accuracy']['test']:10.4f} "
            f"{max(test) if test else float('nan'):9.4f} {summary['wall_time_s'] / 60:6.1f} m  "
            f"{onednn.get('cpu', '?')}, oneDNN {'on' if onednn.get('enabled') else 'off'}, "
            f"{summary.get('finished_at', '?')}"
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy")
    axes.set_title("RegNetX32 on Fashion-MNIST (96x96, batch 128): ours beside d2l's")
    axes.set_ylim(0.45, 1.0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path = os.path.join(args.out, "accuracy.png")
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
