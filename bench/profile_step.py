"""Where one RegNetX32 training step goes: oneDNN primitives and TensorFlow ops, ours beside PyTorch's.

Profile before optimizing: this prints, per training step (96x96x1, batch 128,
SGD), the time of every oneDNN primitive kind (convolution forward / backward
data / backward weights, batch norm, reorders), the most expensive primitives
with their shapes, and, for ours, the TensorFlow ops outside oneDNN (the Eigen
element-wise kernels) from the TensorFlow profiler. With `torch` importable it
runs the d2l PyTorch network the same way, so the same oneDNN primitive can be
compared across the two frameworks (same shapes, same memory formats).

Each side runs in a subprocess with ONEDNN_VERBOSE=1 (oneDNN reads it once, at
start); the verbose log's per-primitive times are wall times, so they overlap
where TensorFlow runs two ops at once.

Usage:
    python bench/profile_step.py [--policy float32|mixed_bfloat16] [--steps 2] [--top 20] [--no-torch]
"""

import argparse
import collections
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "=====PROFILED STEPS====="
BATCH, SIZE, CLASSES = 128, 96, 10


# ----------------------------------------------------------------------------- children


def child_ours(policy, steps):
    """Train keras_regnet.RegNetX32 (warm-up, then `steps` logged steps, then profiler steps)."""
    sys.path.insert(0, str(HERE))
    import keras

    keras.mixed_precision.set_global_policy(policy)
    from throughput import fixed_batch_dataset

    import keras_regnet

    model = keras_regnet.RegNetX32()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    dataset = fixed_batch_dataset(BATCH, SIZE)
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    print(MARK, flush=True)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    print(f"STEP_MS {1000 * (time.perf_counter() - start) / steps:.1f}", flush=True)
    print(MARK, flush=True)
    for name, ms, count in tf_op_totals(model, dataset, steps):
        print(f"TFOP {ms:.2f} {count:.1f} {name}", flush=True)


def tf_op_totals(model, dataset, steps):
    """Per-step wall time of each TensorFlow op type, from a tf.profiler trace."""
    import tempfile

    import tensorflow as tf

    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # the profiler's proto moved: skip this part
        return []
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        for path in Path(logdir).rglob("*.xplane.pb"):
            space.ParseFromString(path.read_bytes())
    totals, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_type = name.rsplit(":", 1)[-1]
                if op_type in (
                    "Process",
                    "StartRegion",
                    "StopRegion",
                    "Record",
                    "MemoryAllocation",
                    "MemoryDeallocation",
                ):
                    continue
                totals[op_type] += event.duration_ps / 1e9 / steps
                counts[op_type] += 1 / steps
    return [(name, ms, counts[name]) for name, ms in totals.most_common()]


def child_torch(steps):
    """Train the d2l PyTorch RegNetX32, bf16 autocast + channels_last (or fp32 channels_last)."""
    namespace = {}
    exec(_torch_model_code(), namespace)  # noqa: S102 - the bench's own model code
    torch = namespace["torch"]
    bf16 = os.environ["PROFILE_POLICY"] == "mixed_bfloat16"
    torch.manual_seed(0)
    net = namespace["regnetx32"]().to(memory_format=torch.channels_last)
    x = (torch.rand(BATCH, 1, SIZE, SIZE) * 255).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (BATCH,))
    step = namespace["make_train_step"](net, x, y, bf16)
    for _ in range(3):
        step()
    print(MARK, flush=True)
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    float(loss)
    print(f"STEP_MS {1000 * (time.perf_counter() - start) / steps:.1f}", flush=True)
    print(MARK, flush=True)


def _torch_model_code():
    # Read, not imported: importing peers.py would load Keras (TensorFlow) into the PyTorch process.
    source = (HERE / "peers.py").read_text()
    return source.split("TORCH_MODEL = r'''", 1)[1].split("'''", 1)[0]


# ----------------------------------------------------------------------------- parent


def run_side(side, policy, steps):
    """(step ms, {primitive key: ms per step}, [TF op rows]) of one side, or None with why."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", PROFILE_POLICY=policy, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, __file__, "--child", side, "--policy", policy, "--steps", str(steps)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    parts = result.stdout.split(MARK)
    if result.returncode != 0 or len(parts) < 3:
        return None, f"{side} run failed (rc {result.returncode}): {result.stderr[-400:]}"
    primitives = collections.Counter()
    step_ms = None
    for line in parts[1].splitlines():
        if line.startswith("STEP_MS "):
            step_ms = float(line.split()[1])
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or "exec" not in fields:
            continue
        at = fields.index("exec")
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        kind, impl, prop = fields[at + 2], fields[at + 3], fields[at + 4]
        dtype = fields[at + 5].split(":")[1] if ":" in fields[at + 5] else ""
        primitives[(kind, prop, dtype, fields[-2], impl)] += ms / steps
    tf_ops = []
    for line in parts[2].splitlines():
        if line.startswith("TFOP "):
            _, ms, count, name = line.split(" ", 3)
            tf_ops.append((name, float(ms), float(count)))
    return (step_ms, primitives, tf_ops), None


def by_kind(primitives):
    kinds = collections.Counter()
    for (kind, prop, *_), ms in primitives.items():
        kinds[f"{kind} {prop}"] += ms
    return kinds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--steps", type=int, default=2, help="profiled training steps")
    parser.add_argument("--top", type=int, default=20, help="most expensive primitives to list")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--child", choices=("ours", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.child == "ours":
        return child_ours(args.policy, args.steps)
    if args.child == "torch":
        return child_torch(args.steps)

    sides = {"ours": None, "torch": None}
    notes = []
    for side in sides:
        if side == "torch" and (args.no_torch or importlib.util.find_spec("torch") is None):
            notes.append("PyTorch side skipped" + ("" if args.no_torch else " (torch not importable)"))
            continue
        print(f"profiling {side} ({args.policy}) ...", flush=True)
        sides[side], why = run_side(side, args.policy, args.steps)
        if why:
            notes.append(why)
    ours, torch = sides["ours"], sides["torch"]
    if ours is None:
        sys.exit("\n".join(notes))
    torch_label = (
        "PyTorch bf16 autocast, channels_last" if args.policy == "mixed_bfloat16" else "PyTorch fp32, channels_last"
    )
    print(
        f"\nRegNetX32 training step, {SIZE}x{SIZE}x1, batch {BATCH}, {args.policy}; "
        f"ms per step, {args.steps} step(s) with ONEDNN_VERBOSE=1"
    )
    print(
        f"  step wall time with verbose logging on (throughput.py measures without): ours {ours[0]:.0f} ms"
        + (f", {torch_label} {torch[0]:.0f} ms" if torch else "")
    )
    ours_kinds = by_kind(ours[1])
    torch_kinds = by_kind(torch[1]) if torch else {}
    print(f"\n  {'oneDNN primitive kind':40s} {'ours':>9s} {'PyTorch':>9s}")
    for kind in sorted(set(ours_kinds) | set(torch_kinds), key=lambda k: -ours_kinds.get(k, 0)):
        theirs = f"{torch_kinds[kind]:9.1f}" if kind in torch_kinds else f"{'-':>9s}"
        print(f"  {kind:40s} {ours_kinds.get(kind, 0):9.1f} {theirs}")
    print(
        f"  {'all oneDNN primitives':40s} {sum(ours_kinds.values()):9.1f} "
        + (f"{sum(torch_kinds.values()):9.1f}" if torch else f"{'-':>9s}")
    )

    # The same primitive (kind, propagation, dtype, shape) on both sides.
    theirs_by_shape = collections.Counter()
    if torch:
        for (kind, prop, dtype, shape, _), ms in torch[1].items():
            theirs_by_shape[(kind, prop, dtype, shape)] += ms
    print(
        f"\n  top {args.top} primitives of ours (ms per step: ours, PyTorch's for the same primitive "
        "and shape, nan where it runs none):"
    )
    for (kind, prop, dtype, shape, impl), ms in ours[1].most_common(args.top):
        theirs = theirs_by_shape.get((kind, prop, dtype, shape))
        print(
            f"  {ms:7.1f} {theirs if theirs is not None else float('nan'):7.1f}  {kind} {prop} {dtype} {shape} [{impl}]"
        )
    if ours[2]:
        print(
            "\n  ours, TensorFlow ops by type (tf.profiler; oneDNN ops appear as _MklNative*; "
            "times overlap where two ops run at once):"
        )
        for name, ms, count in ours[2][: args.top]:
            print(f"  {ms:7.1f} ms  x{count:5.1f}  {name}")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
