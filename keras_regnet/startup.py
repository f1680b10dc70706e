"""A quiet TensorFlow start-up for command-line processes on CPU machines.

TensorFlow's C++ side prints to stderr before Python can configure it: the
absl "WARNING: All log messages before absl::InitializeLog() is called ..."
banner and INFO lines (oneDNN, "Could not find cuda drivers") while it is
imported, and on a machine without an NVIDIA driver an
``E0000 ... cuda_platform.cc] failed call to cuInit: ... CUDA error`` line at
the first device query. None of it is news on a CPU machine, and a pool of
worker processes repeats it once per worker.

`quiet_tensorflow()` (call it before anything imports TensorFlow) sets
``TF_CPP_MIN_LOG_LEVEL`` (3 without an NVIDIA driver, so no CUDA *error*; 2
with one, so real GPU errors still show) unless the user set it, and imports
TensorFlow with stderr (file descriptor 2) pointed at /dev/null. A failing
import is not hidden: it is raised again by the caller's own import.
"""

import os
import sys


def has_nvidia_driver():
    """True where an NVIDIA driver could serve CUDA (a device node or libcuda)."""
    import ctypes.util
    import glob

    return bool(glob.glob("/dev/nvidia[0-9]*")) or ctypes.util.find_library("cuda") is not None


def quiet_tensorflow():
    """Set TensorFlow's C++ log level and import it without its start-up lines; no-op if already imported."""
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):  # unset or empty
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_nvidia_driver() else "3"
    if "tensorflow" in sys.modules:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        try:
            import tensorflow  # noqa: F401
        except Exception:  # noqa: BLE001 - the caller's own import raises it, visibly
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
