"""keras-regnet: AnyNet / RegNet design spaces for Keras 3 and TensorFlow.

The pure-Python parts (specs, zoo, complexity, design spaces) import no
TensorFlow; model constructors are loaded lazily on first access so that
`import keras_regnet` stays cheap.
"""

from keras_regnet import startup as _startup

# Before anything imports TensorFlow: a quiet import and oneDNN where it wins (keras_regnet.startup).
_startup.prepare("script")

from keras_regnet import saving as _saving  # noqa: E402
from keras_regnet import zoo as _zoo  # noqa: E402
from keras_regnet.specs import AnyNetSpec, StageSpec, regnet_spec  # noqa: E402

# Custom layers, the optimizer and the loss register with Keras as soon as Keras
# is imported (a saved .keras file then loads in a fresh process), without
# importing TensorFlow here.
_saving.install()

__version__ = "0.1.0"

# Loaded from keras_regnet.models on first access: one constructor per zoo model, and the rest.
_MODEL_NAMES = {
    *_zoo.names(),
    "AnyNet",
    "anynet_from_params",
    "load_weights",
    "preprocess_input",
    "decode_predictions",
}


def __getattr__(name):
    if name in _MODEL_NAMES:
        from keras_regnet import models

        return getattr(models, name)
    raise AttributeError(f"module 'keras_regnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _MODEL_NAMES)


__all__ = ["AnyNetSpec", "StageSpec", "regnet_spec", *sorted(_MODEL_NAMES)]
