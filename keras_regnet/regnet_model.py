"""RegNetModel: the functional `keras.Model` class of every model this package builds, with a faster `predict`.

Its own module, importing only Keras: `keras_regnet.saving` registers it the moment Keras is first
imported, which can happen while `keras_regnet.layers` is still loading.
"""

import keras

from keras_regnet.validation import check_int


@keras.saving.register_keras_serializable(package="keras_regnet")
class RegNetModel(keras.Model):
    """The functional `keras.Model` that every constructor here returns, with a faster `predict`.

    On TensorFlow, Keras' `predict` of an in-memory array feeds it through a
    `tf.data` pipeline and a step traced for an unknown batch size; for
    RegNetX32 at 96x96 that ran at about half the speed of the same model
    called batch by batch in a traced function (bench/README.md, "Inference
    paths"). This `predict` takes that path for a NumPy array or tensor when
    nothing else is asked of it (no `steps`, no callbacks, no distribution
    strategy): the same outputs, with Keras' progress bar; anything else is
    Keras' own `predict`. Everything else is Keras' functional model:
    saving, cloning, `fit`, `evaluate` (a `.keras` file written before this
    class existed loads as a plain functional model).
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        super().__init__(inputs, outputs, name=name, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        if not self._fast_predict_applies(x, steps, callbacks):
            return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        import numpy as np
        import tensorflow as tf

        if batch_size is not None:
            check_int("batch_size", batch_size, 1)
        batch_size = batch_size or 32  # Keras' default
        if getattr(self, "_traced_predict", None) is None:
            # One trace per batch shape: the full batches and at most one shorter last batch.
            self._traced_predict = tf.function(lambda images: self(images, training=False))
        count = int(x.shape[0])
        batches = max(1, -(-count // batch_size))
        progress = keras.utils.Progbar(batches, verbose=1 if verbose == "auto" else verbose)
        outputs = []
        for index in range(batches):
            chunk = tf.convert_to_tensor(x[index * batch_size : (index + 1) * batch_size])
            outputs.append(keras.tree.map_structure(lambda t: t.numpy(), self._traced_predict(chunk)))
            progress.update(index + 1)
        return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *outputs)

    def _fast_predict_applies(self, x, steps, callbacks):
        if keras.backend.backend() != "tensorflow" or steps is not None or callbacks or len(self.inputs) != 1:
            return False
        import numpy as np
        import tensorflow as tf

        if getattr(self, "_distribute_strategy", None) is not None or tf.distribute.has_strategy():
            return False
        return isinstance(x, (np.ndarray, tf.Tensor)) and len(x.shape) == len(self.inputs[0].shape)
