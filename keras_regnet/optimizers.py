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
step runs about a third fewer ops (bench/trial_cost.py). There, too, the
weight decay and the update are built in a plain loop over the variables:
Keras routes each variable through tf.distribute's update wrappers, which
cost more to trace than the ops they wrap.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_regnet")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` (same arguments, same update), cheaper to trace with weight decay."""

    _step_learning_rate = None
    _step_constants = None  # per traced step: each constant built once, not once per variable

    @property
    def learning_rate(self):
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        keras.optimizers.SGD.learning_rate.fset(self, value)

    def _backend_apply_gradients(self, grads, trainable_variables):
        # Keras evaluates the schedule once per variable (weight decay) plus once for the update.
        self._step_learning_rate = self._get_current_learning_rate()
        self._step_constants = {}
        try:
            return super()._backend_apply_gradients(grads, trainable_variables)
        finally:
            self._step_learning_rate = None
            self._step_constants = None

    def _constant(self, name, value, dtype):
        """`tf.cast(value, dtype)`, built once a step for all variables (the same numbers, fewer graph ops)."""
        import tensorflow as tf

        if self._step_constants is None:
            return tf.cast(value, dtype)
        if (name, dtype) not in self._step_constants:
            self._step_constants[name, dtype] = tf.cast(value, dtype)
        return self._step_constants[name, dtype]

    def _plain_tensorflow(self):
        """TensorFlow outside a distribution strategy: the per-variable ops can be built directly."""
        if keras.backend.backend() != "tensorflow":
            return False
        import tensorflow as tf

        return not tf.distribute.has_strategy()

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._plain_tensorflow():
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        # Keras routes each variable through tf.distribute's update machinery, ~5 ms of tracing
        # a variable; with no strategy that is a plain loop (the same update ops).
        for gradient, variable in zip(grads, trainable_variables):
            self.update_step(
                gradient, variable.value if isinstance(variable, keras.Variable) else variable, learning_rate
            )

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or not self._plain_tensorflow():  # mirrored/multi-worker variables: Keras' own
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        momentum = self.momentums[self._get_variable_index(variable)]
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=momentum.value.handle,
            lr=self._constant("learning_rate", learning_rate, variable.dtype),
            grad=tf.cast(gradient, variable.dtype),
            momentum=self._constant("momentum", self.momentum, variable.dtype),
            use_locking=False,
            use_nesterov=self.nesterov,
        )

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not self._plain_tensorflow():
            return super()._apply_weight_decay(variables)

        # Keras' decoupled decay, w -= w * wd * lr, without the per-variable tf.distribute wrapper.
        for variable in variables:
            if self._use_weight_decay(variable):
                variable = variable.value if isinstance(variable, keras.Variable) else variable
                lr = self._constant("learning_rate", self.learning_rate, variable.dtype)
                variable.assign_sub(variable * self._constant("weight_decay", self.weight_decay, variable.dtype) * lr)
