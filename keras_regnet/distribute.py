"""Distributed training: the `tf.distribute` strategy, who the chief is, and Keras 3's multi-worker fixes.

Only the chief writes into the run's output folder; every other worker writes
its (identical) outputs into ``out/<task_type>-<task_id>``, as the TensorFlow
multi-worker guide recommends. TensorFlow only: under another Keras backend
``"auto"`` is TensorFlow's default (no-op) strategy and the others are refused
with an error that says so.
"""

import json
import os

STRATEGIES = ("auto", "mirrored", "multiworker")


def make_strategy(name):
    """The `tf.distribute` strategy for `name` (create it before any other TF work)."""
    import tensorflow as tf

    from keras_regnet.backends import require_tensorflow

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; received {name!r}.")
    if name != "auto":
        require_tensorflow(f"--strategy {name} (tf.distribute)")
    if name == "auto":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    text = os.environ.get("TF_CONFIG")
    if text:
        try:
            tf_config = json.loads(text)
            tf_config["cluster"], tf_config["task"]["type"]  # noqa: B018 (presence check)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                "strategy 'multiworker' needs TF_CONFIG to be JSON with 'cluster' and "
                f"'task' ({{'type': ..., 'index': ...}}); received {text!r}."
            ) from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def task_of(strategy):
    """(task_type, task_id, is_chief) of this process; (None, None, True) when not multi-worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", None)
    if not task_type:
        return None, None, True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return task_type, task_id, chief


def fix_multiworker(model, strategy):
    """Work around Keras 3.15's `fit`/`evaluate` failing under MultiWorkerMirroredStrategy.

    Keras's TensorFlow trainer has two multi-worker bugs (keras-team/keras#20585):

    1. Before the first step it builds the model from one input batch, got by
       *reducing* the per-replica batch across workers; that eager collective
       fails ("Attempt to convert a value (PerReplica...) to a Tensor"). Only
       shapes and dtypes matter there, so the local replica's batch is used.
    2. It averages each step's logs across workers with
       ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalar
       loss/metric values ("Invalid reduction dimension 0 for input with 0
       dimensions"). The steps here return them with shape ``(1,)``, which that
       reduction averages back to scalars.

    Instance-level patches (no global monkey-patching); a no-op for any other
    strategy. Call after `compile_model`.
    """
    import tensorflow as tf
    from keras import tree

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tree.map_structure(local, next(it))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def rank1(value):
        if tf.is_tensor(value) and value.shape.rank == 0:
            return tf.reshape(value, (1,))
        return value

    def with_rank1_logs(step):
        def wrapped(data):
            return tree.map_structure(rank1, step(data))

        return wrapped

    object.__setattr__(model, "_maybe_symbolic_build", _maybe_symbolic_build.__get__(model))
    object.__setattr__(model, "train_step", with_rank1_logs(model.train_step))
    object.__setattr__(model, "test_step", with_rank1_logs(model.test_step))
    return model


def sync_statistics_callback(strategy):
    """Average BatchNorm moving statistics across replicas at the end of every epoch.

    Keras 3's BatchNormalization keeps its moving mean/variance per replica
    (tf.keras made them ON_READ/MEAN variables): under a multi-replica strategy
    each worker would end with the statistics of its own shard only, and the
    workers' saved models would differ. This callback all-reduces every
    non-trainable float variable (the moving statistics) to the replicas' mean,
    so all replicas hold -- and save -- the same model. It runs first among the
    callbacks, before the epoch is backed up or checkpointed.
    """
    import keras
    import tensorflow as tf

    class SyncStatistics(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]

            def replica_fn():
                ctx = tf.distribute.get_replica_context()
                means = ctx.all_reduce("MEAN", [tf.identity(v.value) for v in variables])
                for variable, mean in zip(variables, means):
                    variable.value.assign(mean)

            self._sync = tf.function(lambda: strategy.run(replica_fn)) if variables else None

        def on_epoch_end(self, epoch, logs=None):
            if self._sync is not None:
                self._sync()

    return SyncStatistics()
