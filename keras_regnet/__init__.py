"""keras-regnet: AnyNet / RegNet design spaces for Keras 3 and TensorFlow.

The pure-Python parts (specs, zoo, complexity, design spaces) import no
TensorFlow; model constructors are loaded lazily on first access so that
`import keras_regnet` stays cheap.
"""

from keras_regnet import saving as _saving
from keras_regnet.specs import AnyNetSpec, StageSpec, regnet_spec

# Custom layers, the optimizer and the loss register with Keras as soon as Keras
# is imported (a saved .keras file then loads in a fresh process), without
# importing TensorFlow here.
_saving.install()

__version__ = "0.1.0"

_MODEL_NAMES = {
    "AnyNet", "RegNetX32", "anynet_from_params", "load_weights", "preprocess_input", "decode_predictions",
    "RegNetX002", "RegNetX004", "RegNetX006", "RegNetX008", "RegNetX016",
    "RegNetX032", "RegNetX040", "RegNetX064", "RegNetX080", "RegNetX120",
    "RegNetX160", "RegNetX320",
    "RegNetY002", "RegNetY004", "RegNetY006", "RegNetY008", "RegNetY016",
    "RegNetY032", "RegNetY040", "RegNetY064", "RegNetY080", "RegNetY120",
    "RegNetY160", "RegNetY320",
}


def __getattr__(name):
    if name in _MODEL_NAMES:
        from keras_regnet import models

        return getattr(models, name)
    raise AttributeError(f"module 'keras_regnet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _MODEL_NAMES)


__all__ = ["AnyNetSpec", "StageSpec", "regnet_spec", *sorted(_MODEL_NAMES)]
