"""Where one design-space trial's time goes, before and after the trial-overhead fixes.

A trial at the study's settings (AnyNetX_E, 0.5M-2M flops at 32x32, digits,
batch 32, lr 0.05, 5 epochs) is timed phase by phase for a few sampled
networks, with two optimizers:

  stock   keras.optimizers.SGD(weight_decay=...), built inside the first traced
          step (what the search used before);
  ours    keras_regnet.optimizers.SGD (weight decay reads the schedule once a
          step), built eagerly by `training.compile_model`.

Phases: build + compile; first training step (tracing the train function,
graph optimisation, the step); the rest of epoch 1; the first validation
(tracing the test function); epochs 2..E (train + validation); and, for
KerasTuner's own trial loop, the extra time of one in-process
`keras_tuner.Tuner` trial (per-epoch checkpoint, trial records).

    python bench/trial_cost.py [--nets 4] [--threads 1]
"""

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def phases(model, ds, epochs):
    import keras

    marks = {}

    class Marks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks["begin"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0 and "first_step" not in marks:
                marks["first_step"] = time.perf_counter()

        def on_test_begin(self, logs=None):
            marks.setdefault("epoch1_train", time.perf_counter())

        def on_test_end(self, logs=None):
            marks.setdefault("epoch1_val", time.perf_counter())

    start = time.perf_counter()
    model.fit(ds.train, validation_data=ds.validation, epochs=epochs, verbose=0, shuffle=False, callbacks=[Marks()])
    end = time.perf_counter()
    return {
        "startup": marks["begin"] - start,
        "first step": marks["first_step"] - marks["begin"],
        "rest of epoch 1": marks["epoch1_train"] - marks["first_step"],
        "first validation": marks["epoch1_val"] - marks["epoch1_train"],
        f"epochs 2-{epochs}": end - marks["epoch1_val"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="TF threads (a pool worker on 2 cores gets 1)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import keras_tuner

    from keras_regnet import data as data_lib
    from keras_regnet import design_spaces, training, tuning
    from keras_regnet.models import AnyNet

    ds = data_lib.load("digits", image_size=32, batch_size=32, seed=0)
    space = design_spaces.get("AnyNetX_E", flops=(0.5e6, 2e6), input_shape=ds.input_shape, classes=10)
    specs = space.sample_many(np.random.default_rng(0), args.nets)
    config = training.TrainConfig(epochs=args.epochs, batch_size=32, lr=0.05, verbose=0)
    print(f"{args.nets} AnyNetX_E nets, {args.epochs} epochs, batch 32, digits 32x32, {args.threads} thread(s)")
    totals = {}
    for variant in ("stock", "ours"):
        for i, spec in enumerate(specs):
            keras.backend.clear_session()
            keras.utils.set_random_seed(i)
            t = time.perf_counter()
            model = AnyNet(spec, input_shape=ds.input_shape, classes=10)
            if variant == "stock":
                model.compile(
                    optimizer=keras.optimizers.SGD(
                        learning_rate=training.make_learning_rate(config, ds.steps_per_epoch),
                        momentum=0.9,
                        weight_decay=config.weight_decay,
                    ),
                    loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"],
                )
            else:
                training.compile_model(model, config, ds.steps_per_epoch)
            row = {"build + compile": time.perf_counter() - t, **phases(model, ds, args.epochs)}
            row["total"] = sum(row.values())
            print(
                f"  {variant:5} net {i} ({sum(spec.depths):2d} blocks): "
                + ", ".join(f"{k} {v:.2f}" for k, v in row.items()),
                flush=True,
            )
            for k, v in row.items():
                totals.setdefault(variant, {}).setdefault(k, []).append(v)

    # KerasTuner's own trial loop, in process, with our optimizer: its extra cost per trial.
    out = tempfile.mkdtemp()
    try:
        hypermodel = tuning.DesignSpaceHyperModel(
            space, input_shape=ds.input_shape, classes=10, train_config=config, steps_per_epoch=ds.steps_per_epoch
        )
        oracle = tuning.make_oracle("random", space, max_trials=args.nets, seed=0, epochs=args.epochs)
        tuner = keras_tuner.Tuner(
            oracle=oracle, hypermodel=hypermodel, directory=out, project_name="t", max_model_size=None
        )
        tuner.oracle.verbose = 0
        t = time.perf_counter()
        tuner.search(ds.train, validation_data=ds.validation, epochs=args.epochs, verbose=0, shuffle=False)
        kt_per_trial = (time.perf_counter() - t) / args.nets
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print("\nmean seconds per trial (same networks):")
    print(f"  {'phase':18} {'stock':>7} {'ours':>7}")
    for k in totals["stock"]:
        print(f"  {k:18} {np.mean(totals['stock'][k]):7.2f} {np.mean(totals['ours'][k]):7.2f}")
    ours = np.mean(totals["ours"]["total"])
    print(
        f"  KerasTuner in-process trial (other networks of the same space): {kt_per_trial:.2f} s, "
        f"i.e. ~{kt_per_trial - ours:+.2f} s beyond a bare fit"
    )
    print(f"speed-up of a bare trial: {np.mean(totals['stock']['total']) / ours:.2f}x")


if __name__ == "__main__":
    main()
