"""Helpers shared by the test modules (pytest puts tests/ on sys.path)."""

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=900, env=None):
    """`keras-regnet ARGS` as a subprocess of this Python; `env` adds variables to this process's."""
    return subprocess.run(
        [sys.executable, "-m", "apps.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wait_for(predicate, timeout, what):
    """`predicate()`'s first truthy value, polled every 0.2 s; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_chief_and_workers(command, workers, log_dir, timeout):
    """Runs `command --distributed chief` and one `--distributed worker` per name; all must exit 0.

    Each process logs to `log_dir/<name>.log`; whatever still runs at the end is killed.
    """
    logs = {name: open(Path(log_dir) / f"{name}.log", "w+") for name in ("chief", *workers)}
    procs = {}
    try:
        procs["chief"] = subprocess.Popen(
            command + ["--distributed", "chief"], cwd=ROOT, stdout=logs["chief"], stderr=subprocess.STDOUT
        )
        time.sleep(3)
        for name in workers:
            procs[name] = subprocess.Popen(
                command + ["--distributed", "worker", "--worker-id", name],
                cwd=ROOT,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
        for name in (*workers, "chief"):
            assert procs[name].wait(timeout=timeout) == 0, Path(logs[name].name).read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        for log in logs.values():
            log.close()
