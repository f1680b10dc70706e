"""Saved models load in a fresh process after only `import keras, keras_regnet` (Keras 3.11+ rules)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import ROOT

SAVE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    import keras_regnet
    from keras_regnet import fold, training
    from keras_regnet.models import AnyNet

    out = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 10, 4)
    config = training.TrainConfig(epochs=1, label_smoothing=0.1)
    models = {
        "regnetx32": keras_regnet.RegNetX32(input_shape=(32, 32, 1)),
        "regnety": AnyNet(stem_width=8, stages=[(1, 16, 8, 1.0, 2, 0.25), (1, 32, 8, 1.0, 2, 0.25)], block="y",
                          input_shape=(32, 32, 1), classes=10),
        "vgg": keras_regnet.anynet_from_params({"block_type": "vgg", "num_stages": 2,
                                                "num_blocks_per_stage": [1, 1], "num_channels": [8, 16, 32]},
                                               input_shape=(32, 32, 1), classes=10),
    }
    models["folded"] = fold.fold_batch_norm(models["regnetx32"])
    expected = {}
    for name, model in models.items():
        if name != "folded":  # trained: the file holds our optimizer and loss too
            training.compile_model(model, config, 1)
            model.fit(x, y, epochs=1, verbose=0)
        model.save(f"{out}/{name}.keras")
        expected[name] = np.asarray(model.predict(x, verbose=0)).tolist()
    json.dump({"x": x.tolist(), "expected": expected}, open(f"{out}/expected.json", "w"))
""")

LOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras, keras_regnet

    out = sys.argv[1]
    data = json.load(open(f"{out}/expected.json"))
    x = np.asarray(data["x"], dtype="float32")
    for name, expected in data["expected"].items():
        model = keras.models.load_model(f"{out}/{name}.keras")
        got = model.predict(x, verbose=0)
        np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-6, err_msg=name)
        if name != "folded":
            assert type(model.optimizer).__module__ == "keras_regnet.optimizers", name
            assert int(model.optimizer.iterations) == 1, name
    print("loaded", sorted(data["expected"]))
""")


def _python(code, *args):
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_models_saved_after_training_load_in_a_fresh_process(tmp_path):
    saved = _python(SAVE, tmp_path)
    assert saved.returncode == 0, saved.stderr[-3000:]
    loaded = _python(LOAD, tmp_path)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "loaded ['folded', 'regnetx32', 'regnety', 'vgg']" in loaded.stdout
    # The command line loads the same files for export (here: the SE network).
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "apps.cli",
            "export",
            "--model",
            str(tmp_path / "regnety.keras"),
            "--out",
            str(tmp_path / "export"),
            "--no-verify",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (tmp_path / "export" / "1" / "saved_model.pb").exists()
    assert json.loads((tmp_path / "expected.json").read_text())["expected"]["vgg"]
    assert np.isfinite(np.asarray(json.loads((tmp_path / "expected.json").read_text())["expected"]["regnety"])).all()


def test_import_keras_regnet_does_not_import_tensorflow():
    code = (
        "import sys, keras_regnet, keras_regnet.specs, keras_regnet.design_spaces\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "first_import",
    ["from keras_regnet.layers import GroupedConv2D", "from keras_regnet.models import AnyNet", "import keras_regnet"],
)
def test_any_module_imported_first_registers_every_class(first_import):
    """Keras' first import (inside whichever module comes first) registers everything without a cycle."""
    code = f"{first_import}\nimport keras\nprint(keras.saving.get_registered_object('keras_regnet>RegNetModel'))"
    result = _python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RegNetModel" in result.stdout
