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

import importlib.abc
import importlib.util
import sys

_done = False


def register_all():
    """Import the modules whose classes Keras must find by name (idempotent)."""
    global _done
    if _done:
        return
    _done = True
    from keras_regnet import fold, layers, models, optimizers, training  # noqa: F401 - registers on import

    training.SparseCategoricalCrossentropyWithSmoothing  # noqa: B018 - made and registered on access


class _AfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `keras` with the other finders, then registers once its module has run."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or _done:
            return None
        sys.meta_path.remove(self)
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
        module.__loader__ = module.__spec__.loader = self._loader  # keras sees its own loader
        self._loader.exec_module(module)
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        register_all()


def install():
    """Register now if Keras is loaded, else as soon as it is."""
    if "keras" in sys.modules:
        register_all()
    elif not any(isinstance(f, _AfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
