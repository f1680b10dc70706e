"""Design-space trials per hour, peak memory per process, and whether trials slow down over a long search.

Runs `keras-regnet search` at the study's trial settings (AnyNetX_E, 5 epochs,
0.5M-2M flops at 32x32, digits, batch 32, lr 0.05) for --trials trials with
--workers worker processes, as a subprocess, and samples the RSS of that
process and every descendant (the trial workers) twice a second. Prints, in
one run: models trained per hour, the peak RSS of any one process, and the
mean per-trial wall time of the last 10 trials against the first 10.

With ``--study OUT`` it runs the default ``keras-regnet study --out OUT``
instead (every space, its seed and proxy checks) and prints the trainings per
hour of the whole study, its wall time and peak RSS, beside the previous
default study's figures; OUT keeps the study (report, trials, figures).

    python bench/study_throughput.py [--trials 100] [--workers 2]
    python bench/study_throughput.py --study runs/study
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from keras_regnet import startup  # noqa: E402  (pure Python; TensorFlow runs in the workers)


def _children():
    """{pid: ppid} of every process, from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                table[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    return table


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sample_tree(root, stop, peaks):
    """Keep the peak RSS per pid of `root` and its descendants until `stop` is set."""
    while not stop.is_set():
        parents = _children()
        tree, frontier = {root}, [root]
        while frontier:
            pid = frontier.pop()
            for child, parent in parents.items():
                if parent == pid and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        for pid in tree:
            peaks[pid] = max(peaks.get(pid, 0.0), _rss_mb(pid))
        stop.wait(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--space", default="AnyNetX_E")
    parser.add_argument("--study", metavar="OUT", help="run the default study into OUT instead of a search")
    parser.add_argument("--samples", type=int, help="with --study: networks per space (default: the study's)")
    args = parser.parse_args()
    print("trial workers:", startup.describe_onednn_of("trial"), time.strftime("%Y-%m-%d"), flush=True)
    if args.study:
        return study_run(args.study, args.workers, args.samples)
    out = tempfile.mkdtemp(prefix="study_throughput-")
    command = [
        sys.executable,
        "-m",
        "apps.cli",
        "search",
        "--space",
        args.space,
        "--max-trials",
        str(args.trials),
        "--epochs",
        "5",
        "--flops",
        "0.5M:2M",
        "--image-size",
        "32",
        "--batch-size",
        "32",
        "--lr",
        "0.05",
        "--out",
        out,
    ]
    if args.workers:
        command += ["--workers", str(args.workers)]
    proc, wall, peaks = run_tracked(command, lambda line: line.startswith("trial "))
    try:
        with open(os.path.join(out, "trials.csv"), newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: int(r["trial_id"]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"search failed with exit code {proc.returncode}")
    done = [r for r in rows if r["status"] == "COMPLETED"]
    seconds = [float(r["seconds"]) for r in done]
    first, last = seconds[:10], seconds[-10:]
    coordinator = peaks.get(proc.pid, 0.0)
    workers = [v for pid, v in peaks.items() if pid != proc.pid]
    print(
        f"\n{len(done)} of {len(rows)} trials completed in {wall:.0f} s (process start to exit), "
        f"workers {args.workers or 'default (one per core)'}, {os.cpu_count()} CPUs"
    )
    print(
        f"models trained per hour: {3600 * len(done) / wall:.0f}   (goal >= 1,500, stretch 3,000; previous: 396 "
        "on the 2-core AMD machine without oneDNN, 579 on a 2-core Xeon with oneDNN; before the worker pool: 50-69)"
    )
    print(
        f"peak RSS of any one process: {max([coordinator, *workers]):.0f} MB (coordinator {coordinator:.0f} MB, "
        f"worker peak {max(workers, default=0):.0f} MB over {len(workers)} worker processes; goal <= 2048)"
    )
    print(
        f"per-trial wall time, mean of trials 1-10: {sum(first) / len(first):.1f} s; of the last 10: "
        f"{sum(last) / len(last):.1f} s; ratio {sum(last) / len(last) / (sum(first) / len(first)):.2f} "
        "(goal within 1.2x)"
    )


def run_tracked(command, keep):
    """Run `command` (from the repo root), echo the lines `keep` accepts; (return code, wall s, peak RSS by pid)."""
    peaks, stop = {}, threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    sampler = threading.Thread(target=sample_tree, args=(proc.pid, stop, peaks), daemon=True)
    sampler.start()
    for line in proc.stdout:
        if keep(line):
            print(line.rstrip(), flush=True)
    proc.wait()
    stop.set()
    sampler.join()
    return proc, time.perf_counter() - start, peaks


def study_run(out, workers, samples=None):
    """The default study as a user runs it: trainings per hour, wall time, peak RSS."""
    import json

    command = [sys.executable, "-m", "apps.cli", "study", "--out", out]
    if workers:
        command += ["--workers", str(workers)]
    if samples:
        command += ["--samples", str(samples)]
    proc, wall, peaks = run_tracked(command, lambda line: True)
    if proc.returncode != 0:
        sys.exit(f"study failed with exit code {proc.returncode}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    studied = sum(v["n"] for v in summary["spaces"].values())
    checks = summary.get("seed_check") or {}
    proxy = summary.get("proxy_check") or {}
    epochs = summary["settings"]["epochs"]
    long_epochs = proxy.get("epochs", 4 * epochs)
    # A long training is long_epochs / epochs study trainings' worth of epochs: the proxy check's (two seeds)
    # and the confirm networks' that the proxy check did not train already.
    confirm = summary.get("confirm") or {}
    proxied = {(r["space"], str(r["trial_id"])) for r in proxy.get("rows", [])}
    extra = sum((r["space"], str(r["trial_id"])) not in proxied for r in confirm.get("rows", []))
    long_trainings = proxy.get("k", 0) + proxy.get("k_long_seeds", 0) + extra
    equivalent = studied + checks.get("k", 0) + long_trainings * long_epochs / epochs
    coordinator = peaks.get(proc.pid, 0.0)
    workers_peak = max([v for pid, v in peaks.items() if pid != proc.pid], default=0.0)
    print(
        f"\ndefault study: {studied} networks ({len(summary['spaces'])} spaces) + seed check k={checks.get('k', 0)} + "
        f"{long_trainings} trainings at {long_epochs} epochs (proxy check k={proxy.get('k', 0)}, two seeds; confirm) = "
        f"{equivalent:.0f} {epochs}-epoch trainings' "
        f"worth in {wall:.0f} s ({wall / 60:.1f} min; goal <= 60 min for >= 100 per space with its checks)"
    )
    print(
        f"study trainings per hour: {3600 * studied / wall:.0f} networks, {3600 * equivalent / wall:.0f} "
        "5-epoch trainings' worth (previous default: 300 networks in 35.5 min, 507 an hour, no checks)"
    )
    print(f"peak RSS: coordinator {coordinator:.0f} MB, any worker {workers_peak:.0f} MB (goal <= 2,048 MB)")


if __name__ == "__main__":
    main()
