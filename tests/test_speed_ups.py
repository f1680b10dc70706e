"""A trial with every speed-up trains the same network as stock Keras: same seed, same steps, same numbers.

The stock side is `bench/trial_engines.py`'s ``stock`` engine (Keras' own
batch norm, 1x1 convolutions, SGD and `evaluate`; grouped convolutions one
group at a time), so this checks what that bench times. It compares a few
steps at the study's peak learning rate: the two sides differ only in float
rounding, which training amplifies step by step (after 8 steps the stem's
weights differ by ~1e-3; after 5 epochs the errors of 9 study networks
differed by 0.015 SD, bench/README.md "Speed-ups against stock Keras").
"""

import sys

import numpy as np
import pytest
from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import trial_engines  # noqa: E402

STEPS = 3


def _train(spec):
    """Per-step losses, every weight, and the one validation pass of `spec` trained STEPS steps from seed 3."""
    import keras

    from keras_regnet import data, training, trial_workers
    from keras_regnet.models import AnyNet

    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    # Loaded per side, after the seed (as a study worker does): a second pass over one dataset
    # would see its next, reshuffled epoch.
    ds = data.load("digits", image_size=32, batch_size=32, validation_fraction=0.35, seed=3)
    model = AnyNet(spec, input_shape=ds.input_shape, classes=ds.num_classes, zero_init_last=True)
    config = training.TrainConfig(epochs=1, batch_size=32, lr=0.05, schedule="constant", warmup_epochs=0)
    training.compile_model(model, config, STEPS)
    losses = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    model.fit(ds.train.take(STEPS), epochs=1, verbose=0, shuffle=False, callbacks=[Record()])
    weights = {v.path: keras.ops.convert_to_numpy(v) for v in [*model.weights, *model.optimizer.variables]}
    return losses, weights, trial_workers.final_validation(model, ds.validation)


def _difference(fast, stock, paths):
    """||fast - stock|| / ||stock|| over the named weights taken as one vector."""
    a = np.concatenate([fast[p].ravel() for p in paths])
    b = np.concatenate([stock[p].ravel() for p in paths])
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_speed_ups_train_the_same_numbers_as_stock_keras(monkeypatch):
    from keras_regnet import layers
    from keras_regnet.specs import AnyNetSpec, StageSpec

    spec = AnyNetSpec(
        16,
        [
            StageSpec(1, 16, 2, 1.0),  # 2 channels a group: the depthwise form where oneDNN is off
            StageSpec(1, 32, 8, 1.0),
            StageSpec(2, 64, 16, 2.0),  # 2 groups: split form
            StageSpec(1, 256, 64, 2.0),  # a 128 x 256 1x1 kernel: a matmul where oneDNN is off
        ],
    )
    fast = _train(spec)
    trial_engines.undo_speed_ups(monkeypatch.setattr)
    assert layers.GroupedConv2D._tf_convolution.__name__ == "<lambda>"  # the stock path is really taken
    stock = _train(spec)

    (fast_losses, fast_weights, fast_validation), (stock_losses, stock_weights, stock_validation) = fast, stock
    assert len(fast_losses) == STEPS
    # The losses moved (the network trained), and both sides moved alike, step by step.
    assert fast_losses[-1] < fast_losses[0]
    np.testing.assert_allclose(fast_losses, stock_losses, rtol=1e-3)
    assert set(fast_weights) == set(stock_weights)
    # Rounding, not a different computation. Elementwise tolerances fail on values near 0 (a residual
    # branch's gradients start at 0 under zero-init), so each group is compared as one vector. Measured on
    # an AMD EPYC with AVX-512 (2026-12-07), fast vs stock: trainable weights 1.4e-5 (oneDNN off) / 2.5e-4
    # (on), each moving statistic at most 7.8e-6 / 4.1e-4, momentum slots 2.5e-4 / 4.4e-3; with Nesterov
    # momentum on one side instead: 3.1e-2 (weights) and 9.7e-2 (slots).
    slots = [p for p in fast_weights if p.startswith(("sgd/", "SGD/")) or "momentum" in p]
    moving = [p for p in fast_weights if "moving" in p and p not in slots]
    trainable = [p for p in fast_weights if p not in slots and p not in moving]
    assert slots and moving and trainable
    assert _difference(fast_weights, stock_weights, trainable) < 2e-3
    assert _difference(fast_weights, stock_weights, slots) < 2e-2
    for path in moving:  # each statistic alone: a Bessel factor missing in one layer shows
        assert _difference(fast_weights, stock_weights, [path]) < 2e-3, path
    assert fast_validation[0] == pytest.approx(stock_validation[0], rel=1e-3)
    assert fast_validation[1] == pytest.approx(stock_validation[1], abs=1 / 898)
