"""Every keras_regnet object a `.keras` file can name is registered once Keras is imported.

Why: Keras 3.11+ no longer imports a custom object's module while loading a
model (only keras, keras_hub, keras_cv and keras_nlp modules), so a model
saved with `GroupedConv2D`, our SGD or the folded batch norm loads only if
those classes were registered first. `import keras_regnet` must stay free of
TensorFlow (specs, complexity and design spaces count 100,000 networks in
milliseconds, and the command line rejects bad input before TensorFlow
loads), so registration is deferred: done at once if Keras is already
imported, else right after the process first imports Keras.
"""

import sys

_done = False


def register_all():
    """Import the modules whose classes Keras must find by name (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    from keras_regnet import fold, layers, optimizers, regnet_model, training  # noqa: F401 - registers on import

    training.SparseCategoricalCrossentropyWithSmoothing  # noqa: B018 - made and registered on access


def _import_then_register(run):
    run()
    register_all()


def install():
    """Register now if Keras is loaded, else as soon as it is."""
    from keras_regnet import startup

    if "keras" in sys.modules:
        register_all()
    else:
        startup.install_hook("keras", _import_then_register)
