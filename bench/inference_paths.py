"""Which inference path is fastest here: RegNetX32 (96x96x1, batch 128) with and without batch norm folded,
through `model.predict`, a traced call and the exported SavedModel's signature, in float32 and bfloat16.

The paths alternate for --rounds rounds and each keeps its best, so a busy moment hurts every path alike.
Prints img/s per path, each path against the unfolded `model.predict` of its dtype, and the machine
(CPU, oneDNN state, date). `keras_regnet.export`, `keras-regnet predict` and the zoo models' `predict`
take the path this bench measures fastest (bench/README.md, "Inference paths").

    python bench/inference_paths.py [--rounds 3] [--batch-size 128] [--reps 8] [--no-savedmodel]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras_regnet  # noqa: E402  (first: chooses oneDNN before TensorFlow loads)
from keras_regnet import startup  # noqa: E402

startup.prepare("predict")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_regnet import export, fold  # noqa: E402


def rate(fn, batch, reps):
    fn()  # warm-up: tracing, first oneDNN primitive creation
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return batch * reps / (time.perf_counter() - start)


def paths(policy, batch, savedmodel_dir):
    """name -> zero-argument callable running one batch, for the models built under `policy`."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = keras_regnet.RegNetX32()
    folded = fold.fold_batch_norm(model)
    images = np.random.default_rng(0).uniform(0, 255, (batch, 96, 96, 1)).astype("float32")
    tensor = tf.constant(images)
    found = {
        "predict": lambda: model.predict(images, batch_size=batch, verbose=0),
        "predict, BN folded": lambda: folded.predict(images, batch_size=batch, verbose=0),
    }
    for name, m in (("traced call", model), ("traced call, BN folded", folded)):
        call = tf.function(lambda x, m=m: m(x, training=False))
        found[name] = lambda call=call: call(tensor).numpy()
    if savedmodel_dir:
        pixels = tf.constant(np.round(images).astype("uint8"))
        for name, folding in (("SavedModel", False), ("SavedModel, BN folded", True)):
            path = export.export_saved_model(
                model, os.path.join(savedmodel_dir, f"{policy}-{folding}"), fold_batch_norm=folding, verify=False
            )
            signature = tf.saved_model.load(path).signatures["serving_default"]
            found[name] = lambda s=signature: s(images=pixels)["probabilities"].numpy()
    keras.mixed_precision.set_global_policy("float32")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--no-savedmodel", action="store_true")
    args = parser.parse_args()
    print(startup.describe_onednn(), "|", time.strftime("%Y-%m-%d %H:%M"), "| load", os.getloadavg(), flush=True)
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = None if args.no_savedmodel else tmp
        built = {p: paths(p, args.batch_size, where) for p in ("float32", "mixed_bfloat16")}
        for round_ in range(args.rounds):
            for policy, found in built.items():
                for name, fn in found.items():
                    value = rate(fn, args.batch_size, args.reps)
                    best[(policy, name)] = max(best.get((policy, name), 0.0), value)
            print(f"round {round_ + 1} done", flush=True)
    print(f"\nRegNetX32 96x96x1, batch {args.batch_size}: img/s, best of {args.rounds} alternating rounds")
    for policy in built:
        base = best[(policy, "predict")]
        for (p, name), value in best.items():
            if p == policy:
                print(f"  {policy:15s} {name:26s} {value:8.1f}  ({value / base:.2f}x predict)")
    print("load at the end", os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
