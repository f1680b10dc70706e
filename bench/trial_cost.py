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

With ``--phases`` it times the phases of a study trial for a few networks of
the study's recipe (half of digits trained, the other half scored): ops in the
traced training step, build, tracing, TensorFlow's first run (grappler,
oneDNN primitives), ms per step, and the one validation pass, Keras'
``evaluate`` (traced) against the eager `trial_workers.final_validation`, in
chunks of 512 images and at its default chunk.

With ``--ops`` it instead looks inside one training step of an 11-block
network: the graph ops of the traced step (forward, backward, optimizer),
the trace time, and ms per step for inference, the training forward pass,
forward + backward, and the whole step, against the same forward + backward
at batch 256 (per 32 images: what the arithmetic costs once per-op overhead
is spread thin).

    python bench/trial_cost.py [--nets 4] [--threads 1]
    python bench/trial_cost.py --ops [--threads 1]
    python bench/trial_cost.py --phases [--nets 4] [--space AnyNetX_E]
    python bench/trial_cost.py --kernels [--space RegNet]

With ``--kernels`` it profiles the training steps of one epoch of the first
network `--phases` samples (``tf.profiler``): ms per step by op type, the
sum of every op's time against the step's wall time (what is left is
per-op overhead), and the most expensive single ops.
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


def step_anatomy(ds, spec, config):
    """Ops of one traced training step by part, and ms per step of its pieces."""
    import collections

    import keras

    from keras_regnet import training
    from keras_regnet.models import AnyNet

    model = AnyNet(spec, input_shape=ds.input_shape, classes=10)
    training.compile_model(model, config, ds.steps_per_epoch)
    x, y = next(iter(ds.train))
    began = time.perf_counter()
    graph = tf.function(lambda a, b: model.train_step((a, b))).get_concrete_function(x, y).graph
    trace = time.perf_counter() - began

    def part(op):
        if "gradient" in op.name or "Grad" in op.type:
            return "backward"
        if op.name.startswith("sgd") or "/sgd" in op.name or "SGD" in op.name:
            return "optimizer"
        return "forward, loss, metrics"

    parts = collections.Counter(part(op) for op in graph.get_operations())
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def forward_backward(a, b):
        with tf.GradientTape() as tape:
            loss = loss_fn(b, model(a, training=True))
        return tape.gradient(loss, model.trainable_variables)

    def ms(fn, *args, n=50):
        fn(*args)
        fn(*args)
        began = time.perf_counter()
        for _ in range(n):
            result = fn(*args)
        tf.nest.map_structure(lambda t: t.numpy(), result)
        return (time.perf_counter() - began) / n * 1000

    big = (tf.concat([x] * 8, 0), tf.concat([y] * 8, 0))
    return {
        "ops": sum(parts.values()),
        "parts": dict(parts),
        "trace_s": trace,
        "infer_ms": ms(tf.function(lambda a: model(a, training=False)), x),
        "forward_ms": ms(tf.function(lambda a: model(a, training=True)), x),
        "forward_backward_ms": ms(forward_backward, x, y),
        "step_ms": ms(tf.function(lambda a, b: model.train_step((a, b))), x, y),
        "forward_backward_per_32_at_256_ms": ms(forward_backward, *big, n=10) / 8,
    }


def ops_report(ds, space, config):
    from keras_regnet import optimizers

    specs = space.sample_many(np.random.default_rng(0), 6)
    spec = min(specs, key=lambda s: abs(sum(s.depths) - 11))
    macs = space.complexity(spec).flops * 32 * 3  # forward + backward ~ 3x the forward multiply-adds
    print(f"one training step, batch 32: {sum(spec.depths)} blocks, {macs / 1e6:.0f} M multiply-adds")
    rows = {}
    fused = optimizers.SGD.update_step
    for variant in ("Keras' momentum update", "fused momentum update"):
        if variant.startswith("Keras"):
            optimizers.SGD.update_step = optimizers.keras.optimizers.SGD.update_step
        else:
            optimizers.SGD.update_step = fused
        rows[variant] = step_anatomy(ds, spec, config)
    optimizers.SGD.update_step = fused
    for variant, row in rows.items():
        parts = ", ".join(f"{k} {v}" for k, v in sorted(row["parts"].items()))
        print(f"  {variant}: {row['ops']} ops ({parts}); trace {row['trace_s']:.2f} s")
        print(
            f"    ms: inference {row['infer_ms']:.1f}, training forward {row['forward_ms']:.1f}, forward+backward "
            f"{row['forward_backward_ms']:.1f}, whole step {row['step_ms']:.1f}; forward+backward per 32 images "
            f"at batch 256 {row['forward_backward_per_32_at_256_ms']:.1f} "
            f"(step / that = {row['step_ms'] / row['forward_backward_per_32_at_256_ms']:.1f}x)"
        )


def _traced_step(model):
    return tf.function(lambda a, b: model.train_step((a, b)))


def _study_setup(space_name):
    """A study worker's grappler options, the study's data split, `space_name` at its window, its recipe."""
    from keras_regnet import data as data_lib
    from keras_regnet import design_spaces, training

    tf.config.optimizer.set_experimental_options({"layout_optimizer": False, "function_optimization": False})
    ds = data_lib.load("digits", image_size=32, batch_size=32, seed=0, validation_fraction=0.35)
    space = design_spaces.get(space_name, flops=(0.5e6, 2e6), input_shape=ds.input_shape, classes=10)
    return ds, space, training.TrainConfig(epochs=5, batch_size=32, lr=0.05, verbose=0)


def phases_report(space_name, nets):
    """Per network: graph ops of the step, build, trace, first run, ms per step, validation both ways."""
    import keras

    from keras_regnet import training, trial_workers
    from keras_regnet.models import AnyNet

    ds, space, config = _study_setup(space_name)
    scored = ds.validation.concatenate(ds.test)
    x, y = next(iter(ds.train))
    print(f"{nets} {space_name} nets (0.5M-2M flops), digits 32x32 half split, batch 32, one thread; seconds")
    print(
        "  blocks  flops  step ops  build  trace  first run  ms/step  val: evaluate (traced)  eager 512  eager default"
    )
    for i, spec in enumerate(space.sample_many(np.random.default_rng(1), nets)):
        keras.backend.clear_session()
        keras.utils.set_random_seed(i)
        began = time.perf_counter()
        model = AnyNet(spec, input_shape=ds.input_shape, classes=10)
        training.compile_model(model, config, ds.steps_per_epoch)
        build = time.perf_counter() - began
        step = _traced_step(model)
        began = time.perf_counter()
        ops = len(step.get_concrete_function(x, y).graph.get_operations())
        trace = time.perf_counter() - began
        began = time.perf_counter()
        step(x, y)
        first = time.perf_counter() - began
        began = time.perf_counter()
        for _ in range(10):
            out = step(x, y)
        float(out["loss"])
        per_step = (time.perf_counter() - began) / 10 * 1000
        began = time.perf_counter()
        model.evaluate(scored, verbose=0)
        traced = time.perf_counter() - began
        eager = {}
        for chunk in (512, None, 512, None):  # the second of each: both with warm kernels
            began = time.perf_counter()
            trial_workers.final_validation(model, scored, chunk=chunk)
            eager[chunk] = time.perf_counter() - began
        flops = space.complexity(spec).flops / 1e6
        print(
            f"  {sum(spec.depths):6d} {flops:5.2f}M {ops:9d} {build:6.2f} {trace:6.2f} {first:10.2f} "
            f"{per_step:8.1f} {traced:23.2f} {eager[512]:9.2f} {eager[None]:13.2f}",
            flush=True,
        )


def kernels_report(space_name):
    """Per op type, ms of one training step of a study network, against the step's wall time."""
    import collections

    from profile_step import tf_op_totals

    from keras_regnet import training
    from keras_regnet.models import AnyNet

    ds, space, config = _study_setup(space_name)
    spec = space.sample_many(np.random.default_rng(1), 1)[0]
    model = AnyNet(spec, input_shape=ds.input_shape, classes=10)
    training.compile_model(model, config, ds.steps_per_epoch)
    model.fit(ds.train, epochs=1, verbose=0, shuffle=False)  # traced and warm
    began = time.perf_counter()
    model.fit(ds.train, epochs=1, verbose=0, shuffle=False)
    wall = (time.perf_counter() - began) / ds.steps_per_epoch * 1000
    rows = [r for r in tf_op_totals(model, ds.train, ds.steps_per_epoch) if r[0] != "ExecutorState::Process"]
    total = sum(ms for _, ms, _ in rows)
    macs = space.complexity(spec).flops * 32 * 3
    print(
        f"{space_name} net 0 ({sum(spec.depths)} blocks, {macs / 1e6:.0f} M multiply-adds a step of 32), one "
        f"thread: {wall:.1f} ms a step (wall), {total:.1f} ms in ops ({total / wall:.0%}), "
        f"{macs / wall / 1e6:.1f} G multiply-adds/s"
    )
    kinds = collections.Counter()
    for name, ms, _ in rows:
        kinds[
            "convolutions"
            if name.startswith("Conv2D") or "Depthwise" in name
            else "batch norm"
            if "BatchNorm" in name
            else name
        ] += ms
    for name, ms, count in rows[:12]:
        print(f"  {name:36s} {ms:6.2f} ms  {ms / total:4.0%}  x{count:.0f}")
    print("  by kind: " + ", ".join(f"{k} {v:.1f} ms ({v / total:.0%})" for k, v in kinds.most_common(4)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", action="store_true", help="the anatomy of one training step instead")
    parser.add_argument("--phases", action="store_true", help="the phases of a study trial instead")
    parser.add_argument("--kernels", action="store_true", help="ms per op type of a study step instead")
    parser.add_argument("--space", default="AnyNetX_E", help="with --phases or --kernels: the design space")
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
    if args.ops:
        return ops_report(ds, space, config)
    if args.phases:
        return phases_report(args.space, args.nets)
    if args.kernels:
        return kernels_report(args.space)
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
