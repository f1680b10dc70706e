"""Load test for `keras-regnet serve`: latency, throughput and peak memory.

Exports RegNetX32 at 32x32x1 to a temporary folder and starts `keras-regnet
serve` on it as a subprocess with its default limits (so the server's memory
is measured alone, from /proc), then in one run:

1. small requests (`--batch` images each) at 1, 8, 64 and 200 concurrent
   clients, each client on one keep-alive connection: req/s, img/s, p50/p95
   latency, errors, and the server's peak RSS over all levels;
2. one request of the maximum size alone (a valid body just under
   `--max-body-bytes`, ~9,900 images at 32x32): time and peak RSS;
3. `--big-clients` concurrent maximum-size requests: how many were admitted
   (200) and refused at once (503), their latency, and the server's peak RSS
   against the goal "model + 4x the admitted bodies";
4. one request ~7x over the limit (463 MB, as a user once sent), streamed: the
   client must read a 413, not a broken pipe;
5. bodies of `--bad-mib` MiB (default 20) alone, one at a time: a valid batch
   of images, a flat list of numbers, nested lists one level too deep, a ragged
   batch (its last image smaller) and one image of the right rank far too
   long: status, time, the server's peak RSS against the goal "model + 4x the
   body", and its RSS afterwards.

    python bench/serve_load.py [--requests 400] [--batch 1] [--big-clients 8]
                               [--size 32] [--max-body-mib 64] [--bad-mib 20]
                               [--only-bad]

Peak RSS is the kernel's VmHWM, reset between phases through
/proc/PID/clear_refs; "model" is the server's RSS after loading and warm-up.
About 45 s on 2 cores.
"""

import argparse
import http.client
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

MIB = 1024 * 1024
PATH = "/v1/models/model:predict"


def build_model(size):
    import keras_regnet

    return "RegNetX32", keras_regnet.RegNetX32(input_shape=(size, size, 1), classes=10)


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid):
    """Reset VmHWM to the current RSS; False where the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def start_server(model_dir, extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "serve", "--model-dir", str(model_dir), "--port", "0", *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, log = queue.Queue(), []

    def pump():
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        log.append(line)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return proc, int(found[1]), lines
    proc.kill()
    raise RuntimeError("server did not start:\n" + "".join(log))


def post(port, body, headers=None, timeout=600):
    """One request on a fresh connection -> (status, seconds, payload)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        start = time.perf_counter()
        conn.request("POST", PATH, body=body, headers=headers or {})
        response = conn.getresponse()
        payload = response.read()
        return response.status, time.perf_counter() - start, payload
    finally:
        conn.close()


def run_level(port, body, clients, total):
    """`total` requests spread over `clients` keep-alive connections."""
    latencies, statuses, lock = [], [], threading.Lock()
    per_client = [total // clients + (i < total % clients) for i in range(clients)]
    go = threading.Barrier(clients)

    def client(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.connect()
            go.wait()
            for _ in range(count):
                start = time.perf_counter()
                conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    statuses.append(response.status)
        finally:
            conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, n) for n in per_client]:
            future.result(timeout=600)
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    errors = sum(status != 200 for status in statuses)
    return len(latencies) / wall, np.percentile(ms, 50), np.percentile(ms, 95), errors


def max_size_body(limit, size, seed=1):
    """A valid row-format body of as many images as fit in `limit`."""
    rng = np.random.default_rng(seed)
    one = len(json.dumps(rng.integers(0, 256, (size, size, 1)).tolist())) + 2
    count = int((limit - 64) / one)
    while True:
        body = json.dumps({"instances": rng.integers(0, 256, (count, size, size, 1)).tolist()}).encode()
        if len(body) <= limit:
            return body, count
        count -= max(1, (len(body) - limit) // one + 1)


def sized_body(instance, mib, last=None):
    """'{"instances": [instance, instance, ..., last]}' of about `mib` MiB."""
    count = max(1, int(mib * MIB / (len(instance) + 2)))
    parts = [instance] * (count - 1) + [last or instance]
    return ('{"instances": [' + ", ".join(parts) + "]}").encode()


def bad_bodies(size, mib):
    """(what, body) pairs for phase 5."""
    rng = np.random.default_rng(2)
    image = json.dumps(rng.integers(0, 256, (size, size, 1)).tolist())
    small = json.dumps(rng.integers(0, 256, (size // 2, size, 1)).tolist())
    numbers = ", ".join(map(str, rng.integers(0, 256, 100_000).tolist()))
    pixels = "], [".join(map(str, rng.integers(0, 256, mib * MIB // 8).tolist()))
    long_image = ('{"instances": [[[[' + pixels + "]]]]}").encode()
    return [
        ("valid images", sized_body(image, mib)),
        ("flat number list", sized_body(numbers, mib)),
        ("nested one level too deep", sized_body(f"[{image}]", mib)),
        ("ragged batch (last image smaller)", sized_body(image, mib, last=small)),
        ("one image, right rank, far too long", long_image),
    ]


def run_bad_bodies(proc, port, size, mib):
    print(f"\n5) bodies of about {mib} MiB alone; goal: peak RSS <= RSS before + 4x the body")
    print("(peak - RSS before) / body; RSS before and after in MiB")
    print(f"{'body':<36} {'MiB':>6} {'status':>6} {'s':>6} {'peak':>12} {'before':>7} {'after':>6}  answer")
    for what, body in bad_bodies(size, mib):
        before = proc_kib(proc.pid, "VmRSS") / 1024
        reset_peak(proc.pid)
        status, seconds, payload = post(port, body)
        peak = proc_kib(proc.pid, "VmHWM") / 1024
        after = proc_kib(proc.pid, "VmRSS") / 1024
        ratio = (peak - before) / (len(body) / MIB)
        answer = "ok" if status == 200 else json.loads(payload)["error"][:70]
        print(
            f"{what:<36} {len(body) / MIB:>6.1f} {status:>6} {seconds:>6.2f} {ratio:>5.2f}x "
            f"{'met' if ratio <= 4 else 'MISSED':>6} {before:>7.0f} {after:>6.0f}  {answer}",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="small requests per concurrency level (default 400)")
    parser.add_argument("--batch", type=int, default=1, help="images per small request (default 1)")
    parser.add_argument(
        "--levels", type=int, nargs="+", default=[1, 8, 64, 200], help="concurrent clients (default 1 8 64 200)"
    )
    parser.add_argument("--big-clients", type=int, default=8, help="concurrent maximum-size requests (default 8)")
    parser.add_argument(
        "--size", type=int, default=32, help="image side, the model's input is size x size x 1 (default 32)"
    )
    parser.add_argument(
        "--max-body-mib",
        type=int,
        default=64,
        help="the server's --max-body-bytes in MiB (default 64, the server's default)",
    )
    parser.add_argument("--bad-mib", type=int, default=20, help="size of the phase-5 bodies in MiB (default 20)")
    parser.add_argument("--only-bad", action="store_true", help="run phase 5 only")
    args = parser.parse_args(argv)
    for flag in ("requests", "batch", "big_clients", "max_body_mib", "size", "bad_mib"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if min(args.levels) < 1:
        parser.error("--levels must be >= 1")

    from keras_regnet.export import export_saved_model
    from keras_regnet.serving import RUN_BATCH

    name, model = build_model(args.size)
    limit = args.max_body_mib * MIB
    small = json.dumps(
        {"instances": np.random.default_rng(0).integers(0, 256, (args.batch, args.size, args.size, 1)).tolist()}
    ).encode()
    big, big_images = max_size_body(limit, args.size)
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_saved_model(model, Path(tmp) / "model", verify=False)
        del model
        proc, port, lines = start_server(Path(tmp) / "model", ["--name", "model", "--max-body-bytes", str(limit)])
        try:
            run_level(port, small, 1, 10)  # warm up the graph
            model_mib = proc_kib(proc.pid, "VmRSS") / 1024
            resettable = reset_peak(proc.pid)
            inflight = 4 * limit  # the server's default --max-inflight-bytes
            print(
                f"{name} {args.size}x{args.size}x1, keras-regnet serve pid {proc.pid}, defaults: "
                f"--max-body-bytes {limit // MIB} MiB, --max-inflight-bytes "
                f"{inflight // MIB} MiB, --max-concurrent 4, {RUN_BATCH} images "
                f"per model call; {os.cpu_count()} CPUs"
            )
            print(
                f"server RSS after load + warm-up (model): {model_mib:.0f} MiB"
                + ("" if resettable else "  (clear_refs refused: peaks are since start)")
            )
            if args.only_bad:
                run_bad_bodies(proc, port, args.size, args.bad_mib)
                return 0
            print(f"\n1) small requests: batch {args.batch}, {args.requests} requests per level, {len(small)} B each")
            print(f"{'clients':>7} {'req/s':>8} {'img/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}")
            for clients in args.levels:
                rps, p50, p95, errors = run_level(port, small, clients, max(args.requests, clients))
                print(
                    f"{clients:>7} {rps:>8.1f} {rps * args.batch:>8.1f} {p50:>8.1f} {p95:>8.1f} {errors:>6}", flush=True
                )
            peak = proc_kib(proc.pid, "VmHWM") / 1024
            print(f"server peak RSS: {peak:.0f} MiB (model + {peak - model_mib:.0f} MiB)")

            reset_peak(proc.pid)
            status, seconds, _ = post(port, big)
            peak = proc_kib(proc.pid, "VmHWM") / 1024
            print(
                f"\n2) one maximum-size request alone: {len(big) / MIB:.1f} MiB, "
                f"{big_images} images -> {status} in {seconds:.1f} s; server peak "
                f"RSS {peak:.0f} MiB = model + {(peak - model_mib) / (len(big) / MIB):.2f}x "
                "the body"
            )

            reset_peak(proc.pid)
            print(
                f"\n3) {args.big_clients} concurrent maximum-size requests: "
                f"{len(big) / MIB:.1f} MiB, {big_images} images each"
            )
            with ThreadPoolExecutor(max_workers=args.big_clients) as pool:
                results = list(pool.map(lambda _: post(port, big), range(args.big_clients)))
            peak = proc_kib(proc.pid, "VmHWM") / 1024
            by_status = {}
            for status, seconds, payload in results:
                by_status.setdefault(status, []).append(seconds)
                if status == 200:
                    assert len(json.loads(payload)["predictions"]) == big_images
            for status, times in sorted(by_status.items()):
                print(f"  {status}: {len(times)} requests, {min(times):.1f}-{max(times):.1f} s")
            admitted = len(by_status.get(200, [])) * len(big) / MIB
            at_once = min(len(by_status.get(200, [])), inflight // len(big))
            bodies = at_once * len(big) / MIB
            print(
                f"server peak RSS: {peak:.0f} MiB = model + {peak - model_mib:.0f} "
                f"MiB = model + {(peak - model_mib) / bodies:.2f}x the "
                f"{at_once} bodies admitted at once ({bodies:.0f} MiB; "
                f"{admitted:.0f} MiB answered 200 in all); goal <= 4x: "
                f"{'met' if peak - model_mib <= 4 * bodies else 'MISSED'}"
            )

            before = proc_kib(proc.pid, "VmRSS") / 1024
            reset_peak(proc.pid)
            print("\n4) one request 7x over the limit, streamed")
            size = 7 * limit
            chunk = b" " * MIB

            def stream():
                for _ in range(size // MIB):
                    yield chunk

            status, seconds, payload = post(port, stream(), {"Content-Length": str(size)})
            print(f"  {size / 1e6:.0f} MB -> {status} in {seconds:.1f} s: {json.loads(payload)['error']}")
            peak = proc_kib(proc.pid, "VmHWM") / 1024
            print(f"server RSS before: {before:.0f} MiB, peak during it: {peak:.0f} MiB")
            run_bad_bodies(proc, port, args.size, args.bad_mib)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        noise = []
        while not lines.empty():
            noise.append(lines.get())
        tracebacks = sum("Traceback" in line for line in noise)
        print(
            f"server console after start: {len(noise)} lines, {tracebacks} tracebacks: {''.join(noise[:3]).strip()!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
