"""Which Keras backend runs: choosing one before Keras loads, and refusing TensorFlow-only work elsewhere.

The models, layers, training recipe and `.keras` files work on every Keras 3
backend (tensorflow, jax, torch; the data pipeline is `tf.data`, which Keras
feeds to any backend). SavedModel export and `tf.distribute` strategies are
TensorFlow's own: under another backend they stop with an error that says how
to run them (a `.keras` file saved under any backend loads under TensorFlow).
"""

import importlib.util
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")  # each one's Python package has the same name


def current():
    """The backend Keras uses (or will use once imported): KERAS_BACKEND, else tensorflow."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def select(name):
    """Make Keras use backend `name`; call before Keras is imported (a no-op when it already runs `name`)."""
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if importlib.util.find_spec(name) is None:
        raise ValueError(f"--backend {name}: the {name} package is not installed; pip install 'keras-regnet[{name}]'")
    if "keras" in sys.modules and current() != name:
        raise ValueError(
            f"--backend {name}: Keras is already running on {current()} in this process; "
            f"set KERAS_BACKEND={name} before Keras is imported"
        )
    os.environ["KERAS_BACKEND"] = name
    return name


def require_tensorflow(what):
    """ValueError unless Keras runs on TensorFlow: `what` (e.g. "SavedModel export") needs it."""
    backend = current()
    if backend != "tensorflow":
        raise ValueError(
            f"{what} needs Keras' TensorFlow backend, and this process runs {backend}: "
            f"run it with KERAS_BACKEND=tensorflow (a .keras file saved under {backend} "
            "loads there unchanged)"
        )
