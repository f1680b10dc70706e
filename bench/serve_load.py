"""Load test for `keras_regnet.serving`: requests/s and latency vs. clients.

Exports RegNetX32 at 32x32x1 (or a tiny grouped CNN if the models are not
importable) to a temporary folder, serves it on a free 127.0.0.1 port, and
sends a fixed number of row-format predict requests at 1, 8 and 32 concurrent
clients (each client keeps one HTTP/1.1 connection). Prints one line per level
and stops the server. Bounded: `--requests` per level (default 200).

    python bench/serve_load.py [--requests 200] [--batch 1] [--levels 1 8 32]
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def build_model():
    import keras_regnet

    return "RegNetX32", keras_regnet.RegNetX32(input_shape=(32, 32, 1), classes=10)


def run_level(port, path, body, clients, total):
    """`total` requests spread over `clients` keep-alive connections."""
    latencies, errors, lock = [], [], threading.Lock()
    per_client = [total // clients + (i < total % clients) for i in range(clients)]

    def client(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for _ in range(count):
                start = time.perf_counter()
                conn.request("POST", path, body=body,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status != 200:
                        errors.append(payload[:200])
        finally:
            conn.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, n) for n in per_client if n]:
            future.result(timeout=600)
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return len(latencies) / wall, np.percentile(ms, 50), np.percentile(ms, 99), errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per concurrency level (default 200)")
    parser.add_argument("--batch", type=int, default=1,
                        help="images per request (default 1)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32],
                        help="concurrent clients (default 1 8 32)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.batch < 1 or min(args.levels) < 1:
        parser.error("--requests, --batch and --levels must be >= 1")

    from keras_regnet.export import export_saved_model
    from keras_regnet.serving import ModelServer

    name, model = build_model()
    images = np.random.default_rng(0).integers(0, 256, (args.batch, 32, 32, 1))
    body = json.dumps({"instances": images.tolist()}).encode()
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_saved_model(model, Path(tmp) / "model", verify=False)
        with ModelServer(Path(tmp) / "model", name="model", port=0) as server:
            path = "/v1/models/model:predict"
            run_level(server.port, path, body, 1, 10)  # warm up the graph
            print(f"{name}, batch {args.batch}, {args.requests} requests per "
                  f"level, {os.cpu_count()} CPUs, http://127.0.0.1:{server.port}")
            print(f"{'clients':>7} {'req/s':>8} {'img/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for clients in args.levels:
                rps, p50, p99, errors = run_level(
                    server.port, path, body, clients, args.requests)
                print(f"{clients:>7} {rps:>8.1f} {rps * args.batch:>8.1f} "
                      f"{p50:>8.2f} {p99:>8.2f}"
                      + (f"  {len(errors)} errors: {errors[0]!r}" if errors else ""),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
