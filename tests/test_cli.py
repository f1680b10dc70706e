import os

from helpers import run_cli

from keras_regnet.specs import AnyNetSpec


def test_summary_of_regnetx32():
    result = run_cli("summary", "RegNetX32")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "stem output shape: (1, 48, 48, 32)" in out
    assert "stage1 output shape: (1, 24, 24, 32)" in out
    assert "stage2 output shape: (1, 12, 12, 80)" in out
    assert "head output shape: (1, 10)" in out
    assert "flops (multiply-adds): 40,293,162  params: 177,322  acts: 622,090" in out


def test_summary_with_input_shape_classes_and_spec_file(tmp_path):
    spec = tmp_path / "tiny.json"
    spec.write_text(AnyNetSpec(16, [(1, 16, 8), (2, 32, 8)]).to_json())
    result = run_cli("summary", str(spec), "--input-shape", "32,32,3", "--classes", "4")
    assert result.returncode == 0, result.stderr
    assert "stage2 output shape: (1, 4, 4, 32)" in result.stdout
    assert "head output shape: (1, 4)" in result.stdout


def test_summary_bad_input_is_one_clear_line():
    for args in (["summary", "ResNet50"], ["summary", "RegNetX32", "--input-shape", "4,4,1"]):
        result = run_cli(*args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = [l for l in result.stderr.splitlines() if "error:" in l]
        assert len(lines) == 1, result.stderr
    result = run_cli("summary", "RegNetX32", "--input-shape", "96,96")
    assert result.returncode == 2 and "--input-shape" in result.stderr


def test_summary_of_bad_spec_files_is_one_line_naming_the_file(tmp_path):
    cases = {
        "deep.json": ("[" * 100_000 + "]" * 100_000).encode(),
        "huge_depth.json": b'{"stem_width": 8, "stages": [{"depth": 1000000000000000000000000000000, '
        b'"width": 16, "group_width": 8}]}',
        "latin1.json": '{"stem_width": 8, "stages": [], "block": "\xe9"}'.encode("latin-1"),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = run_cli("summary", str(path), timeout=60)
        assert result.returncode == 2, (name, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.stderr, (name, lines)


def test_train_messages_name_the_flag_typed(capsys):
    from apps import cli

    for flag, value in (("--image-size", "0"), ("--epochs", "-1"), ("--batch-size", "0")):
        assert cli.main(["train", flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("keras-regnet train: error: ") and flag in err and "TrainConfig" not in err, err


def test_export_of_a_keras_file_that_is_not_a_zip_says_so(tmp_path, capsys):
    from apps import cli

    fake = tmp_path / "model.keras"
    fake.write_text("just text")
    assert cli.main(["export", "--model", str(fake), "--out", str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err
    assert "is not a Keras zip archive" in err and str(fake) in err, err


def test_search_outside_any_window_suggests_a_real_flag():
    result = run_cli("search", "--flops", "1G:2G", "--max-tries", "5", "--max-trials", "1", "--epochs", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "raise --max-tries" in line and "(--max-tries 5)" in line and "max_tries" not in line, line


def test_cpu_commands_print_no_tensorflow_start_up_noise():
    from keras_regnet import startup

    result = run_cli("summary", "RegNetX32", env={"TF_CPP_MIN_LOG_LEVEL": ""})
    assert result.returncode == 0, result.stderr
    assert "absl::InitializeLog" not in result.stderr and "oneDNN" not in result.stderr, result.stderr
    if not startup.has_nvidia_driver():
        assert result.stderr == "", result.stderr  # above all no "CUDA error" line


def test_predict_prints_class_and_probability_per_image_as_training_prepared_them(tmp_path):
    """A model that reads the mean pixel: predict must hand it [0, 255] pixels at its input size."""
    import json

    import keras
    import numpy as np
    import tensorflow as tf

    inputs = keras.Input((16, 16, 1))
    mean = keras.layers.GlobalAveragePooling2D()(inputs)  # 0..255
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros")(mean)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.array([[-0.1, 0.1]]), np.array([12.8, -12.8])])  # class 1 iff mean > 128
    model.save(tmp_path / "m.keras")
    (tmp_path / "summary.json").write_text(json.dumps({"class_names": ["dark", "bright"]}))
    paths = []
    for name, value in (("dark.png", 20), ("bright.png", 240)):
        image = np.full((8, 8, 3), value, np.uint8)  # other size and channels: resized and made gray
        tf.io.write_file(str(tmp_path / name), tf.io.encode_png(image))
        paths.append(str(tmp_path / name))
    result = run_cli("predict", "--model", str(tmp_path / "m.keras"), *paths, "--top", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{paths[0]}: dark 1.0000") and lines[1].startswith(f"{paths[1]}: bright 1.0000")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    bad = run_cli("predict", "--model", str(tmp_path / "m.keras"), str(tmp_path / "junk.png"))
    assert bad.returncode == 2 and "junk.png" in bad.stderr and "Traceback" not in bad.stderr


def test_train_without_the_files_offline_is_one_line_and_writes_nothing(tmp_path, nowhere, capsys):
    from apps import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "fashion_mnist", "--recipe", "d2l", "--out", str(out), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-regnet train: error: fashion_mnist: "), lines
    assert "offline" in lines[0] and "apt-get install dataset-fashion-mnist" in lines[0], lines
    assert str(nowhere["system"]) in lines[0] and str(nowhere["keras"]) in lines[0], lines
    assert not out.exists()


def test_train_recipe_d2l_sets_its_values_flags_override_them_and_summary_names_it(tmp_path, capsys):
    import json

    from apps import cli, train
    from keras_regnet.specs import AnyNetSpec
    from keras_regnet.training import TrainConfig

    parser = cli.build_parser()
    config = train.config_from_args(parser.parse_args(["train", "--recipe", "d2l", "--dataset", "fashion_mnist"]))
    d2l = dict(model="RegNetX32", image_size=96, batch_size=128, momentum=0.0, lr=0.05, schedule="constant")
    d2l.update(epochs=10, warmup_epochs=0.0, augment=False, weight_decay=0.0, label_smoothing=0.0, recipe="d2l")
    d2l.update(init="d2l", test_each_epoch=True)
    assert {key: getattr(config, key) for key in d2l} == d2l
    assert config.out == os.path.join("runs", "RegNetX32-fashion_mnist-d2l")
    given = train.config_from_args(parser.parse_args(["train", "--recipe", "d2l", "--lr", "0.1", "--augment"]))
    assert (given.lr, given.augment, given.momentum) == (0.1, True, 0.0)
    for argv in (["train"], ["train", "--recipe", "default"]):
        default = train.config_from_args(parser.parse_args(argv))
        assert default.to_dict() == TrainConfig(verbose=default.verbose).to_dict()

    spec = tmp_path / "tiny.json"
    spec.write_text(AnyNetSpec(8, [(1, 16, 8), (1, 32, 8)]).to_json())
    out = tmp_path / "run"
    argv = ["train", "--recipe", "d2l", "--model", str(spec), "--image-size", "16", "--epochs", "1", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"] == "d2l" and summary["config"]["momentum"] == 0.0 and summary["epochs"] == 1
    assert summary["input_shape"] == [16, 16, 1] and summary["data_source"] == "scikit-learn's load_digits"
    assert summary["onednn"]["cpu"] and summary["finished_at"]  # a speed figure names its machine and date
    history = (out / "history.csv").read_text().splitlines()
    assert "test_accuracy" in history[0].split(",") and len(history) == 2  # the test split scored each epoch
