"""SGD whose decoupled weight decay reads the learning-rate schedule once per step.

Why: Keras 3's TensorFlow optimizer applies weight decay variable by
variable and evaluates ``self.learning_rate`` (the whole warm-up + cosine
schedule, a `cond` graph) once per variable. Tracing a training step then
builds the schedule a hundred times or more: for a 11-block AnyNet it was most
of the ~14 s that the first training step took (bench/trial_cost.py). This
class evaluates the schedule once per step and hands that value to Keras' own
weight-decay code, so the update is the same number for number.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_regnet")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` (same arguments, same update), cheaper to trace with weight decay."""

    _step_learning_rate = None

    @property
    def learning_rate(self):
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        keras.optimizers.SGD.learning_rate.fset(self, value)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return super()._apply_weight_decay(variables)
        self._step_learning_rate = self._get_current_learning_rate()
        try:
            return super()._apply_weight_decay(variables)
        finally:
            self._step_learning_rate = None
