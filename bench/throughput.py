"""RegNetX32 training and inference throughput on CPU, side by side with its peers.

One run, one machine, printed together (see bench/README.md for what each
optimization bought and how to read the figures):

  1. the d2l TensorFlow RegNetX32 (the seed's subclassed `ResNeXtBlock` with
     `keras.layers.Conv2D(groups=...)`) on stock Keras 3;
  2. the d2l PyTorch RegNetX32 in fp32 (contiguous and channels_last) and with
     bf16 autocast + channels_last, in a subprocess, when `torch` is importable
     (never a dependency of keras-regnet: `pip install torch` to include it);
  3. `keras_regnet.RegNetX32` in float32 and `mixed_bfloat16`; inference through
     `model.predict` (what a script calls) and a traced call, unfolded and with
     batch norm folded into the convolutions (`keras_regnet.fold`);
  4. the machine's fp32 (and bf16) matmul throughput, and our training FLOP/s as
     a share of it (training FLOPs = 3 x 2 x the analytic forward multiply-adds);
  5. the input pipeline alone (28x28 uint8 -> 96x96 float32, the d2l
     Fashion-MNIST setting, through `keras_regnet.data`'s pipeline);

  6. `keras_regnet.RegNetX32` on each Keras backend (TensorFlow, JAX, torch; as
     `--backend` below, one round);

then the ratios against their targets, the cost growth with image size
(train img/s x pixels at 32, 64, 96, 128 px), the CPU model and flags, oneDNN's
state (on or off, and who chose it: `keras_regnet.startup`) and the date.

Training is measured the way users train: `model.fit` on a `tf.data` dataset
of fixed random batches (PyTorch: the usual zero_grad/forward/backward/step
loop), after warm-up, SGD(0.05), batch 128, 96x96x1, 10 classes. Inference is
one `tf.function` calling the model with `training=False` (PyTorch: eval mode
under `torch.inference_mode`).

With `--backend tensorflow,jax,torch` it measures instead `keras_regnet.RegNetX32`
itself on each Keras backend (one subprocess per backend, `KERAS_BACKEND=...`):
training img/s (`train_on_batch` on one fixed random batch, after warm-up) and
inference img/s (`predict_on_batch`), and prints one table of all backends with
each figure's ratio to the fastest.

Usage:
    python bench/throughput.py [--batch-size 128] [--steps 8] [--stock-steps 2] [--rounds 1]
                               [--no-torch] [--no-stock] [--no-sizes] [--no-backends] [--json PATH]
    python bench/throughput.py --backend tensorflow,jax,torch [--batch-size 128] [--size 96]
                               [--steps 8] [--reps 12] [--rounds 1] [--json PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from keras_regnet import startup  # noqa: E402

startup.prepare("train")  # oneDNN as `keras-regnet train` gets it, chosen before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from peers import d2l_tensorflow_regnetx32, torch_figures  # noqa: E402

import keras_regnet  # noqa: E402
from keras_regnet import complexity, zoo  # noqa: E402

NUM_CLASSES = 10
LEARNING_RATE = 0.05

# Speed targets: (description, numerator, denominator, target)
TARGETS = (
    ("train fp32: ours / d2l on stock Keras 3", "stock_fp32_train", 12.0),
    ("train fp32: ours / PyTorch fp32 (its better memory format)", "torch_fp32_best_train", 1.5),
    ("model.predict fp32: ours / PyTorch fp32 channels_last", "torch_fp32_cl_infer", 1.2),
    ("train bf16: ours mixed_bfloat16 / PyTorch bf16 autocast channels_last", "torch_bf16_cl_train", 1.0),
    ("infer bf16 (model.predict): ours / PyTorch bf16", "torch_bf16_cl_infer", 1.0),
    ("our fp32 training FLOP/s / measured fp32 matmul FLOP/s", "matmul_fp32_flops", 0.30),
    ("input pipeline img/s / our train img/s (fp32)", None, 3.0),
)
# The numerator of each target, in order (ours).
TARGET_NUMERATORS = (
    "ours_fp32_train",
    "ours_fp32_train",
    "ours_fp32_predict",
    "ours_bf16_train",
    "ours_bf16_predict",
    "ours_fp32_train_flops",
    "pipeline",
)
BACKEND_GOAL = 2.0  # the slowest Keras backend at most this many times slower than the fastest


# ----------------------------------------------------------------------------- measuring


class Clock:
    """Wall seconds, and the share of all CPUs this process used meanwhile."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.wall
        self.cpu_share = (_cpu_seconds() - self.cpu) / (self.seconds * (os.cpu_count() or 1))


def _cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


CPU_SHARES = {}


def _spin(n):
    s = 0
    for i in range(n):
        s += i
    return s


def effective_cores(n=3_000_000):
    """How many processes run at full speed side by side right now (1 busy loop each).

    Other tenants of the machine show up here: on an idle 2-core machine it is
    ~2.0; when it reads ~1.0, every multi-threaded figure of the run is halved,
    and OpenMP-based PyTorch suffers more than TensorFlow's thread pool.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    with ctx.Pool(cores) as pool:
        pool.map(_spin, [1000] * cores)  # start the workers
        one, all_ = [], []
        for _ in range(2):
            start = time.perf_counter()
            pool.map(_spin, [n])
            one.append(time.perf_counter() - start)
            start = time.perf_counter()
            pool.map(_spin, [n] * cores)
            all_.append(time.perf_counter() - start)
    return min(cores, cores * min(one) / min(all_))


def random_batch(batch, size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (batch, size, size, 1)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, batch).astype("int32")
    return x, y


# tf.data autotuning off for the fixed batch (there is nothing to tune in it). With it
# on, TF 2.21 sometimes holds `fit`'s return until the autotuner's current sleep
# ends (periods of 10 ms doubling up to 60 s), so a fit of a few seconds could
# end at the next 10 x (2^k - 1) ms: 3/8 fits of 8 steps took 5.11 s instead of
# ~3.4 s, in any policy. That is a teardown stall, not training throughput.
FIXED_BATCH_OPTIONS = tf.data.Options()
FIXED_BATCH_OPTIONS.autotune.enabled = False


def fixed_batch_dataset(batch, size=96):
    """One fixed random batch, repeated: what the training figures are measured on."""
    return tf.data.Dataset.from_tensors(random_batch(batch, size)).repeat().with_options(FIXED_BATCH_OPTIONS)


def train_images_per_second(model, batch, steps, warmup, size=96, from_logits=False, label=None):
    """`model.fit` on a tf.data dataset repeating one fixed random batch."""
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
    )
    dataset = fixed_batch_dataset(batch, size)
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    with Clock() as clock:
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    CPU_SHARES[f"{label or model.name} train" + (f" {size}px" if size != 96 else "")] = clock.cpu_share
    return steps * batch / clock.seconds


def infer_images_per_second(model, batch, reps, size=96, label=None):
    """A tf.function calling the model with training=False on one fixed batch."""
    x = tf.constant(random_batch(batch, size)[0])
    infer = tf.function(lambda images: model(images, training=False))
    for _ in range(2):
        infer(x).numpy()
    with Clock() as clock:
        for _ in range(reps):
            infer(x).numpy()
    CPU_SHARES[f"{label or model.name} infer"] = clock.cpu_share
    return reps * batch / clock.seconds


def predict_images_per_second(model, batch, reps, size=96, label=None):
    """`model.predict` on an array of `reps` batches: what a user's script calls."""
    x = np.repeat(random_batch(batch, size)[0], reps, axis=0)
    model.predict(x[: 2 * batch], batch_size=batch, verbose=0)
    with Clock() as clock:
        model.predict(x, batch_size=batch, verbose=0)
    CPU_SHARES[f"{label or model.name} predict"] = clock.cpu_share
    return reps * batch / clock.seconds


def matmul_flops(dtype, n=2048, reps=8):
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda m: tf.reduce_sum(tf.cast(tf.matmul(m, m), tf.float32)))
    matmul(a).numpy()
    start = time.perf_counter()
    for _ in range(reps):
        matmul(a).numpy()
    return reps * 2 * n**3 / (time.perf_counter() - start)


def pipeline_images_per_second(batch, batches=150, warmup=20):
    """28x28 uint8 -> shuffled, batched, resized to 96x96 float32 (keras_regnet.data's pipeline)."""
    from keras_regnet import data

    n = 60_000  # Fashion-MNIST's train split
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, n).astype(np.int64)
    raw = tf.data.Dataset.from_tensor_slices((images, labels))
    ds = data._pipeline(
        raw, n, size=(96, 96), channels=1, batch_size=batch, seed=0, shuffle=True, augment=False, flip=False
    ).repeat()
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def with_policy(policy, fn):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        return fn()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def progress(fig, prefix):
    shown = ", ".join(
        f"{k[len(prefix) :]} {v:.1f}" for k, v in fig.items() if k.startswith(prefix) and isinstance(v, float)
    )
    print(f"  measured {prefix.rstrip('_')}: {shown}", flush=True)


def load_average():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- --backend

# One backend's figures, in a subprocess started with KERAS_BACKEND set: only
# keras_regnet.RegNetX32 and the backend, nothing else imported.
BACKEND_SCRIPT = r"""
import json, os, sys, time
import numpy as np
import keras
import keras_regnet

batch, size, steps, reps = (int(v) for v in sys.argv[1:5])


def cpu():
    t = os.times()
    return t.user + t.system


rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (batch, size, size, 1)).astype("float32")
y = rng.integers(0, 10, batch).astype("int32")
keras.utils.set_random_seed(0)
model = keras_regnet.RegNetX32(input_shape=(size, size, 1))
model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy())
result = {"backend": keras.backend.backend(), "keras": keras.__version__, "shares": {}}
module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[keras.backend.backend()]
result["version"] = __import__(module).__version__
if module == "torch":
    import torch

    result["version"] += f" ({torch.get_num_threads()} threads)"
start = time.perf_counter()
for _ in range(2):  # warm-up: tracing / compilation
    loss = model.train_on_batch(x, y)
result["warmup_s"] = time.perf_counter() - start
start, c = time.perf_counter(), cpu()
for _ in range(steps):
    loss = model.train_on_batch(x, y)
seconds = time.perf_counter() - start
result["train"] = steps * batch / seconds
result["shares"]["train"] = (cpu() - c) / seconds / os.cpu_count()
result["loss"] = float(np.asarray(loss))
for _ in range(2):
    model.predict_on_batch(x)
start, c = time.perf_counter(), cpu()
for _ in range(reps):
    np.asarray(model.predict_on_batch(x))
seconds = time.perf_counter() - start
result["infer"] = reps * batch / seconds
result["shares"]["infer"] = (cpu() - c) / seconds / os.cpu_count()
print("BACKEND_RESULTS " + json.dumps(result))
"""

BACKENDS = ("tensorflow", "jax", "torch")


def backend_figures(backend, batch, size, steps, reps):
    """One backend's RegNetX32 train/infer img/s, in a subprocess; (None, why) if it fails."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT, str(batch), str(size), str(steps), str(reps)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
        cwd=root,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BACKEND_RESULTS "):
            return json.loads(line[len("BACKEND_RESULTS ") :]), None
    return None, f"{backend} subprocess failed (rc {result.returncode}): {result.stderr[-800:]}"


def measure_backends(backends, rounds, batch, size, steps, reps):
    """{backend: its best figures over `rounds` alternating rounds, or None where it failed}, notes."""
    best, notes = {}, []
    for round_ in range(rounds):
        for backend in backends:
            if backend in best and best[backend] is None:
                continue
            figures, why = backend_figures(backend, batch, size, steps, reps)
            if figures is None:
                notes.append(why)
                best[backend] = None
                continue
            print(
                f"  round {round_ + 1}, {backend}: train {figures['train']:.1f} img/s, "
                f"infer {figures['infer']:.1f} img/s (warm-up {figures['warmup_s']:.1f} s)",
                flush=True,
            )
            kept = best.setdefault(backend, figures)
            for key in ("train", "infer"):
                if figures[key] > kept[key]:
                    kept[key] = figures[key]
                    kept["shares"][key] = figures["shares"][key]
    return best, notes


def backend_comparison(args):
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if not backends or unknown:
        raise SystemExit(f"--backend takes a comma list of {', '.join(BACKENDS)}, got {args.backend!r}")
    started = time.perf_counter()
    load_start = load_average()
    cores_start = effective_cores()
    print(f"load average at start: {load_start}; effective cores: {cores_start:.2f} of {os.cpu_count()}", flush=True)
    best, notes = measure_backends(backends, args.rounds, args.batch_size, args.size, args.steps, args.reps)
    measured = {b: f for b, f in best.items() if f is not None}
    cores_end = effective_cores()
    print()
    print(
        f"keras_regnet.RegNetX32, {args.size}x{args.size}x1, batch {args.batch_size}, 10 classes, "
        f"float32, SGD({LEARNING_RATE}); img/s, best of {args.rounds} round(s) (train: train_on_batch, "
        f"{args.steps} steps after 2 warm-up; infer: predict_on_batch, {args.reps} batches)"
    )
    if measured:
        fastest = {k: max(f[k] for f in measured.values()) for k in ("train", "infer")}
        print(
            f"  {'backend':12s} {'version':>22s} {'train':>9s} {'/fastest':>9s} {'infer':>9s} "
            f"{'/fastest':>9s} {'cpu train':>9s} {'cpu infer':>9s}"
        )
        for backend, f in measured.items():
            print(
                f"  {backend:12s} {f['version']:>22s} {f['train']:9.1f} {f['train'] / fastest['train']:8.2f}x "
                f"{f['infer']:9.1f} {f['infer'] / fastest['infer']:8.2f}x "
                f"{100 * f['shares']['train']:8.0f}% {100 * f['shares']['infer']:8.0f}%"
            )
        slow = [
            f"{b} {k} {fastest[k] / f[k]:.1f}x"
            for b, f in measured.items()
            for k in ("train", "infer")
            if fastest[k] / f[k] > 2.0
        ]
        print(
            "  goal (no backend more than 2x slower than the fastest): "
            + ("met" if not slow else "MISSED: " + ", ".join(f"{s} slower" for s in slow))
        )
    keras_version = next(iter(measured.values()))["keras"] if measured else "n/a"
    print(f"keras {keras_version}; cpu: {startup.cpu_description()[0]}, {os.cpu_count()} logical cpus")
    print(
        f"load average at the end {load_average()}; effective cores {cores_start:.2f} at start, "
        f"{cores_end:.2f} at end of {os.cpu_count()}; run took {time.perf_counter() - started:.0f} s"
    )
    for note in notes:
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"backends": best, "effective_cores": [cores_start, cores_end], "args": vars(args)},
                f,
                indent=1,
                default=str,
            )
    return 0 if len(measured) == len(backends) else 1


# ----------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed training steps (ours, torch)")
    parser.add_argument("--reps", type=int, default=12, help="timed inference batches")
    parser.add_argument("--stock-steps", type=int, default=2, help="stock Keras is slow: few steps")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock Keras 3 peer")
    parser.add_argument("--no-sizes", action="store_true", help="skip the 32..128 px cost growth")
    parser.add_argument("--no-backends", action="store_true", help="skip RegNetX32 on the JAX and torch Keras backends")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate PyTorch/ours this many times and keep each figure's best (use 2-3 on a shared machine)",
    )
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument(
        "--backend",
        help="comma list of Keras backends (tensorflow,jax,torch): measure "
        "keras_regnet.RegNetX32 on each, in a subprocess, instead",
    )
    parser.add_argument("--size", type=int, default=96, help="image side for --backend")
    args = parser.parse_args()
    if args.backend:
        return backend_comparison(args)
    batch, steps, reps = args.batch_size, args.steps, args.reps
    started = time.perf_counter()
    fig, notes = {}, []
    fig["effective_cores_start"] = effective_cores()
    print(
        f"load average at start: {load_average()}; effective cores: "
        f"{fig['effective_cores_start']:.2f} of {os.cpu_count()}",
        flush=True,
    )

    # 2 and 3, in --rounds alternating rounds (PyTorch, then ours), keeping each
    # figure's best: on a shared machine every side gets its quiet moments.
    from keras_regnet import fold

    def keep_best(key, value):
        fig[key] = max(fig.get(key, 0.0), value)

    def ours(policy_key):
        model = keras_regnet.RegNetX32()
        label = f"ours {policy_key}"
        keep_best(f"ours_{policy_key}_train", train_images_per_second(model, batch, steps, warmup=2, label=label))
        keep_best(f"ours_{policy_key}_infer_unfolded", infer_images_per_second(model, batch, reps, label=label))
        keep_best(f"ours_{policy_key}_predict", predict_images_per_second(model, batch, reps, label=label))
        folded = fold.fold_batch_norm(model)
        keep_best(f"ours_{policy_key}_infer", infer_images_per_second(folded, batch, reps, label=label + " folded"))

    if args.no_torch:
        notes.append("PyTorch peer skipped (--no-torch)")
    for _ in range(args.rounds):
        if not args.no_torch and not any("torch subprocess" in n or "not importable" in n for n in notes):
            torch_results, why = torch_figures(batch, steps, reps)
            if torch_results is None:
                notes.append(why)
            else:
                fig["torch_version"] = torch_results["version"]
                fig["torch_threads"] = torch_results["threads"]
                for key in ("fp32", "fp32_cl", "bf16_cl"):
                    keep_best(f"torch_{key}_train", torch_results[key][0])
                    keep_best(f"torch_{key}_infer", torch_results[key][1])
                fig["torch_fp32_best_train"] = max(fig["torch_fp32_train"], fig["torch_fp32_cl_train"])
                for label, share in zip(
                    ("fp32 train", "fp32 infer", "fp32_cl train", "fp32_cl infer", "bf16_cl train", "bf16_cl infer"),
                    torch_results["cpu_shares"],
                ):
                    CPU_SHARES[f"torch {label}"] = share
                progress(fig, "torch_")
        ours("fp32")
        with_policy("mixed_bfloat16", lambda: ours("bf16"))
        keep_best("matmul_fp32_flops", matmul_flops(tf.float32))
        keep_best("matmul_bf16_flops", matmul_flops(tf.bfloat16))
        progress(fig, "ours_")

    # 1. Stock Keras 3 (the d2l code): few steps, it is slow.
    if not args.no_stock:
        stock = d2l_tensorflow_regnetx32()
        fig["stock_fp32_train"] = train_images_per_second(
            stock, batch, args.stock_steps, warmup=1, from_logits=True, label="stock"
        )
        fig["stock_fp32_infer"] = infer_images_per_second(stock, batch, max(2, reps // 4), label="stock")
        progress(fig, "stock_")
    else:
        notes.append("stock Keras 3 peer skipped (--no-stock)")

    # 4. Matmul throughput and our FLOP share.
    spec = zoo.get_spec("RegNetX32")
    forward_macs = complexity.count(spec, (96, 96, 1), NUM_CLASSES).flops
    train_flops_per_image = 3 * 2 * forward_macs
    fig["ours_fp32_train_flops"] = fig["ours_fp32_train"] * train_flops_per_image
    fig["ours_bf16_train_flops"] = fig["ours_bf16_train"] * train_flops_per_image

    # 5. Input pipeline.
    fig["pipeline"] = pipeline_images_per_second(batch)

    # Cost growth with image size (ours, fp32).
    sizes = {}
    if not args.no_sizes:
        for px in (32, 64, 96, 128):
            if px == 96:
                sizes[px] = fig["ours_fp32_train"]
                continue
            model = keras_regnet.RegNetX32(input_shape=(px, px, 1))
            sizes[px] = train_images_per_second(model, batch, max(2, steps // 2), warmup=1, size=px, label="ours fp32")
        fig["sizes"] = sizes
    # The Keras backends, one subprocess each (keras_regnet.RegNetX32 itself, train_on_batch / predict_on_batch).
    backends = {}
    if not args.no_backends:
        found, backend_notes = measure_backends(BACKENDS, 1, batch, 96, steps, reps)
        backends = {b: f for b, f in found.items() if f is not None}
        notes.extend(backend_notes)
        fig["backends"] = backends
    fig["onednn"] = startup.onednn_state()
    fig["load_average_end"] = load_average()
    fig["effective_cores_end"] = effective_cores()
    fig["cpu_shares"] = CPU_SHARES
    fig["seconds"] = time.perf_counter() - started

    # ------------------------------------------------------------------ report
    model_name, flags = startup.cpu_description()
    print()
    print(
        f"RegNetX32, 96x96x1, batch {batch}, 10 classes, SGD({LEARNING_RATE}); img/s, best of "
        f"{args.rounds} round(s) "
        f"(train: model.fit on tf.data of a fixed random batch, {steps} steps after warm-up; "
        f"infer: tf.function, training=False, {reps} batches)"
    )
    rows = [
        ("d2l TensorFlow code, stock Keras 3, fp32", "stock_fp32_train", "stock_fp32_infer"),
        ("d2l PyTorch, fp32 contiguous", "torch_fp32_train", "torch_fp32_infer"),
        ("d2l PyTorch, fp32 channels_last", "torch_fp32_cl_train", "torch_fp32_cl_infer"),
        ("d2l PyTorch, bf16 autocast channels_last", "torch_bf16_cl_train", "torch_bf16_cl_infer"),
        ("keras_regnet, float32 (infer: model.predict)", "ours_fp32_train", "ours_fp32_predict"),
        ("keras_regnet, float32, traced call", None, "ours_fp32_infer_unfolded"),
        ("keras_regnet, float32, traced call, BN folded", None, "ours_fp32_infer"),
        ("keras_regnet, mixed_bfloat16 (infer: model.predict)", "ours_bf16_train", "ours_bf16_predict"),
        ("keras_regnet, mixed_bfloat16, traced call", None, "ours_bf16_infer_unfolded"),
        ("keras_regnet, mixed_bfloat16, traced, BN folded", None, "ours_bf16_infer"),
    ]
    print(f"  {'':46s} {'train':>9s} {'infer':>9s}")
    for label, train_key, infer_key in rows:
        cells = []
        for key in (train_key, infer_key):
            cells.append(f"{fig[key]:9.1f}" if key in fig else f"{'-':>9s}")
        print(f"  {label:46s} {cells[0]} {cells[1]}")
    print()
    print(
        f"matmul 2048^2: fp32 {fig['matmul_fp32_flops'] / 1e9:.1f} GFLOP/s, "
        f"bf16 {fig['matmul_bf16_flops'] / 1e9:.1f} GFLOP/s"
    )
    print(
        f"ours, training FLOPs/image = 3 x 2 x {forward_macs / 1e6:.1f} M MACs = "
        f"{train_flops_per_image / 1e6:.0f} MFLOP: fp32 {fig['ours_fp32_train_flops'] / 1e9:.1f} GFLOP/s "
        f"({100 * fig['ours_fp32_train_flops'] / fig['matmul_fp32_flops']:.0f}% of fp32 matmul), "
        f"bf16 {fig['ours_bf16_train_flops'] / 1e9:.1f} GFLOP/s "
        f"({100 * fig['ours_bf16_train_flops'] / fig['matmul_bf16_flops']:.0f}% of bf16 matmul)"
    )
    print(f"input pipeline alone (28x28 uint8 -> 96x96 float32, batch {batch}): {fig['pipeline']:.0f} img/s")
    if sizes:
        base = sizes[96] * 96 * 96
        print("cost growth, ours fp32 training: img/s, img/s x pixels (relative to 96 px):")
        for px, ips in sizes.items():
            print(f"  {px:4d} px: {ips:8.1f} img/s, {ips * px * px / 1e6:7.2f} Mpx/s ({ips * px * px / base:.2f})")
    print()
    print("ratios (this run):")
    fig["ratios"] = {}
    for (label, den, target), num in zip(TARGETS, TARGET_NUMERATORS):
        den = den or "ours_fp32_train"
        if num in fig and den in fig:
            ratio = fig[num] / fig[den]
            fig["ratios"][label] = ratio
            shown = f"{100 * ratio:.0f}%" if target < 1 else f"{ratio:.2f}x"
            goal = f"{100 * target:.0f}%" if target < 1 else f"{target:.1f}x"
            print(f"  {label:70s} {shown:>8s}  target >= {goal:6s} {'met' if ratio >= target else 'MISSED'}")
        else:
            print(f"  {label:70s} {'n/a':>8s}  (peer not measured)")
    if backends:
        for key in ("train", "infer"):
            spread = max(f[key] for f in backends.values()) / min(f[key] for f in backends.values())
            fig["ratios"][f"slowest / fastest Keras backend, {key}"] = spread
            print(
                f"  {f'fastest / slowest Keras backend, {key} ({len(backends)} backends)':70s} {spread:7.2f}x  "
                f"target <= {BACKEND_GOAL:.1f}x  {'met' if spread <= BACKEND_GOAL else 'MISSED'}"
            )
    print()
    threads = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    print(f"cpu: {model_name}, {os.cpu_count()} logical cpus; flags: {' '.join(flags)}")
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{startup.describe_onednn().split('; cpu:')[0]}, {time.strftime('%Y-%m-%d')}, "
        f"intra/inter threads {threads[0] or 'default'}/{threads[1] or 'default'}"
        + (f", torch {fig['torch_version']} ({fig['torch_threads']} threads)" if "torch_version" in fig else "")
    )
    print(
        f"load average at the end {fig['load_average_end']}; effective cores (parallel busy loops) "
        f"{fig['effective_cores_start']:.2f} at start, {fig['effective_cores_end']:.2f} at end "
        f"of {os.cpu_count()}; run took {fig['seconds']:.0f} s"
    )
    print("share of all CPUs used while timing: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in CPU_SHARES.items()))
    for note in notes:
        print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
