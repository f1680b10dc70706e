"""TensorFlow's start-up, decided before it loads: a quiet import, and oneDNN on or off per job.

Quiet: TensorFlow's C++ side prints to stderr before Python can configure
it: the absl "WARNING: All log messages before absl::InitializeLog() is
called ..." banner and INFO lines (oneDNN, "Could not find cuda drivers")
while it is imported (``TF_CPP_MIN_LOG_LEVEL`` does not silence those), and
on a machine without an NVIDIA driver an ``E0000 ... cuInit: ... CUDA error``
line at the first device query. None of it is news on a CPU machine.
`prepare` (run by ``import keras_regnet``, and by the command line per job)
sets ``TF_CPP_MIN_LOG_LEVEL`` (3 without an NVIDIA driver, 2 with one, so real
GPU errors still show) unless the user set it, and makes the first import of
TensorFlow run with file descriptor 2 pointed at /dev/null. A failing import
is not hidden: stderr is restored before the error propagates.

oneDNN: TensorFlow 2.21 reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it loads,
and on its own turns oneDNN on only for x86 CPUs with AVX-512 VNNI/BF16 or
AMX (Intel, and AMD from Zen 4); on AVX2-only CPUs (AMD Zen 2/3) it runs
Eigen's kernels. Measured there (bench/README.md, "oneDNN on AMD"), oneDNN
trains RegNetX32 at 2.6x and predicts at 2.3x Eigen's speed, but runs the
study's thin 32x32 trial networks 1.16x slower. So `prepare(job)` sets the
variable per job (`ONEDNN_BY_JOB`) on x86 CPUs, never over a value the user
set, and never once TensorFlow is loaded (then nothing can change it: set
the variable before the script imports TensorFlow, or import keras_regnet
first). `onednn_state()` says what ran and who chose it (summary.json, bench).
"""

import importlib.abc
import importlib.util
import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# Set beside the variable when this package chose its value, as "job=value", so that a child process tells
# the package's choice from a user's (a value that no longer matches it is the user's).
CHOSEN_BY_PACKAGE = "KERAS_REGNET_ONEDNN_JOB"

# Per job, the setting measured fastest where TensorFlow's default leaves oneDNN off (AVX2-only x86):
# RegNet training and inference gain 2.3-2.6x with "1"; the study's thin trial networks run 1.16x slower
# with it, so trials keep TensorFlow's own default (None). "script" is `import keras_regnet` in a user's
# program, which mostly builds, trains and predicts with the models; it is the weakest choice: it never
# replaces a job's choice inherited from a parent process.
ONEDNN_BY_JOB = {
    "script": "1",
    "train": "1",
    "predict": "1",
    "serve": "1",
    "export": "1",
    "summary": "1",
    "search": None,
    "study": None,
    "trial": None,
}


def has_nvidia_driver():
    """True where an NVIDIA driver could serve CUDA (a device node or libcuda)."""
    import ctypes.util
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*")) or ctypes.util.find_library("cuda") is not None


def cpu_description():
    """(model name, vector-ISA flags) of this CPU from /proc/cpuinfo; the flags decide TensorFlow's oneDNN default."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", "x86_64", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    return model, [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")]


def user_onednn_setting():
    """The user's own ``TF_ENABLE_ONEDNN_OPTS`` ("0", "1", ...), or None when unset or set by this package."""
    value = os.environ.get(ONEDNN_VARIABLE)
    if value is None or _package_job() is not None:
        return None
    return value


def _package_job():
    """The job whose choice ``TF_ENABLE_ONEDNN_OPTS`` holds, or None where the package did not set it."""
    job, _, value = os.environ.get(CHOSEN_BY_PACKAGE, "").partition("=")
    return job if job and value == os.environ.get(ONEDNN_VARIABLE) else None


def choose_onednn(job):
    """Set ``TF_ENABLE_ONEDNN_OPTS`` for `job` where it is still ours to set; returns the value now in force."""
    if job not in ONEDNN_BY_JOB:
        raise ValueError(f"job must be one of {sorted(ONEDNN_BY_JOB)}; received {job!r}")
    current = os.environ.get(ONEDNN_VARIABLE)
    if "tensorflow" in sys.modules or user_onednn_setting() is not None:
        return current  # loaded already (nothing can change it now), or the user's value
    if job == "script" and _package_job() is not None:
        return current  # a parent process chose for its job
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return current  # ARM builds have their own oneDNN default: leave it
    value = ONEDNN_BY_JOB[job]
    if value is None:  # TensorFlow's own default for this CPU
        os.environ.pop(ONEDNN_VARIABLE, None)
        os.environ.pop(CHOSEN_BY_PACKAGE, None)
    else:
        os.environ[ONEDNN_VARIABLE] = value
        os.environ[CHOSEN_BY_PACKAGE] = f"{job}={value}"
    return value


def onednn_state():
    """What this process runs (call after TensorFlow loaded): oneDNN on or off, who chose it, and the CPU."""
    from tensorflow.python.util import _pywrap_util_port

    value = os.environ.get(ONEDNN_VARIABLE)
    if value is None:
        chosen_by = "tensorflow's default for this CPU"
    elif _package_job() is not None:
        chosen_by = f"keras_regnet ({_package_job()} job)"
    else:
        chosen_by = "the user"
    model, flags = cpu_description()
    return {
        "enabled": bool(_pywrap_util_port.IsMklEnabled()),
        ONEDNN_VARIABLE: value,
        "chosen_by": chosen_by,
        "cpu": model,
        "cpu_flags": flags,
    }


def describe_onednn():
    """One line for logs and bench output: oneDNN on/off, the setting and who chose it, the CPU."""
    state = onednn_state()
    return (
        f"oneDNN {'on' if state['enabled'] else 'off'} ({ONEDNN_VARIABLE}={state[ONEDNN_VARIABLE] or 'unset'}, "
        f"chosen by {state['chosen_by']}); cpu: {state['cpu']} [{' '.join(state['cpu_flags'])}]"
    )


def describe_onednn_of(job):
    """`describe_onednn()` of a fresh process set up for `job` (e.g. the trial workers a bench starts)."""
    import subprocess

    code = f"from keras_regnet import startup; startup.quiet_tensorflow({job!r}); print(startup.describe_onednn())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return result.stdout.strip() or f"oneDNN state unknown ({result.stderr.strip()[-200:]})"


class ModuleHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs the first import of top-level module `name` as `around(run)`: code around a module's import
    that must not import it first (a muted stderr; registration once it has loaded). Used once."""

    def __init__(self, name, around):
        self.name, self.around = name, around

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # the other finders' spec; a find without an import (a probe) keeps the hook
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self._loader  # the module sees its own loader
        if self in sys.meta_path:  # used once
            sys.meta_path.remove(self)
        self.around(lambda: self._loader.exec_module(module))


def install_hook(name, around):
    """`ModuleHook(name, around)` first in `sys.meta_path`, unless `name` is loaded or already hooked."""
    if name not in sys.modules and not any(isinstance(f, ModuleHook) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, ModuleHook(name, around))


def _with_stderr_muted(run):
    """`run()` with file descriptor 2 on /dev/null; restored before any error propagates."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        run()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def prepare(job="script"):
    """Before TensorFlow loads: its C++ log level, oneDNN for `job`, a quiet first import. Imports nothing."""
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):  # unset or empty
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_nvidia_driver() else "3"
    choose_onednn(job)
    install_hook("tensorflow", _with_stderr_muted)


def quiet_tensorflow(job="script"):
    """`prepare(job)`, then import TensorFlow now; an import that fails is raised again by the caller's own import."""
    prepare(job)
    try:
        import tensorflow  # noqa: F401
    except Exception:  # noqa: BLE001 - the caller's own import raises it, visibly
        pass
