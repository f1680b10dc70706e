"""SGD whose decoupled weight decay reads the learning-rate schedule once per step.

Why: Keras 3's TensorFlow optimizer applies weight decay variable by
variable and evaluates ``self.learning_rate`` (the whole warm-up + cosine
schedule, a `cond` graph) once per variable. Tracing a training step then
builds the schedule a hundred times or more: for a 11-block AnyNet it was most
of the ~14 s that the first training step took (bench/trial_cost.py). This
class evaluates the schedule once per step and hands that value to Keras' own
weight-decay code, so the update is the same number for number.

On TensorFlow outside a distribution strategy, the momentum update of each
variable is also one fused `ResourceApplyKerasMomentum` kernel (the same
formula, m = momentum * m - lr * g; w += m) instead of Keras' eight or so
element-wise ops, reads and assignments: a design-space trial's training
step runs about a third fewer ops (bench/trial_cost.py).
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

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        if tf.distribute.has_strategy():  # mirrored/multi-worker variables: Keras' own update
            return super().update_step(gradient, variable, learning_rate)
        momentum = self.momentums[self._get_variable_index(variable)]
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=momentum.value.handle,
            lr=tf.cast(learning_rate, variable.dtype),
            grad=tf.cast(gradient, variable.dtype),
            momentum=tf.cast(self.momentum, variable.dtype),
            use_locking=False,
            use_nesterov=self.nesterov,
        )

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return super()._apply_weight_decay(variables)
        self._step_learning_rate = self._get_current_learning_rate()
        try:
            return super()._apply_weight_decay(variables)
        finally:
            self._step_learning_rate = None
