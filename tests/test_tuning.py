import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from helpers import csv_rows, run_chief_and_workers, run_cli, wait_for

from apps import flags
from keras_regnet import design_spaces, search, tuning

ROOT = Path(__file__).resolve().parents[1]
SEARCH_FLAGS = [
    "--dataset",
    "digits",
    "--image-size",
    "32",
    "--batch-size",
    "64",
    "--flops",
    "0.3M:3M",
    "--depth",
    "1:2",
]


def small_space(name="AnyNetX_D", **overrides):
    overrides.setdefault("depth", (1, 2))
    return design_spaces.get(name, flops=(3e5, 3e6), input_shape=(32, 32, 1), classes=10, **overrides)


def test_oracle_draws_design_space_samples_reproducibly():
    space = small_space("AnyNetX_D")
    a = tuning.RandomSearchOracle(space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=7)
    b = tuning.RandomSearchOracle(space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=7)
    draws_a = [a.sample_values() for _ in range(5)]
    draws_b = [b.sample_values() for _ in range(5)]
    assert draws_a == draws_b and a.sample_index == b.sample_index
    for values in draws_a:
        spec = tuning.spec_from_values(values)
        assert space.contains(spec)
        widths = [values[f"width_{i}"] for i in range(1, 5)]
        assert widths == sorted(widths)  # AnyNetX_D: w_{i+1} >= w_i
        assert 3e5 <= values["flops"] <= 3e6
        assert all(type(v) in (int, float, str) for v in values.values())  # JSON-safe plain values
        assert values["flops"] == space.complexity(spec).flops


@pytest.mark.parametrize("make", [tuning.RandomSearchOracle, tuning.BayesianOptimizationOracle])
def test_seed_zero_is_a_seed(make):
    """KerasTuner takes `seed or random.randint(...)`: seed 0 (the default of search and study) must not draw anew."""
    space = small_space("AnyNetX_D")
    oracles = [make(space, objective=tuning.OBJECTIVE, max_trials=5, seed=0) for _ in range(3)]
    assert {o.seed for o in oracles} == {0}
    draws = [[o.sample_values() for _ in range(3)] for o in oracles]
    assert draws[0] == draws[1] == draws[2]


def test_oracle_resumes_its_random_stream_from_saved_state():
    space = small_space("AnyNetX_E")
    first = tuning.RandomSearchOracle(space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=3)
    first.sample_values()
    state = first.get_state()
    expected = first.sample_values()
    resumed = tuning.RandomSearchOracle(space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=99)
    resumed.set_state(state)
    assert resumed.sample_values() == expected


def test_model_based_proposals_are_projected_onto_the_space(monkeypatch):
    space = small_space("AnyNetX_E")
    oracle = tuning.BayesianOptimizationOracle(
        space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=1, num_initial_points=0
    )  # a model-based proposal right away
    proposal = {
        "depth_1": 7.6,
        "depth_2": 2.2,
        "depth_3": 1.0,
        "depth_4": 3.4,
        "width_1": 200.3,
        "width_2": 40.0,
        "width_3": 64.0,
        "width_4": 16.0,
        "bottleneck_ratio": 2.0,
        "group_width": 5.0,
        "tuner/epochs": 2,
    }
    monkeypatch.setattr(
        keras_tuner.oracles.BayesianOptimizationOracle,
        "populate_space",
        lambda self, trial_id: {"status": "RUNNING", "values": dict(proposal)},
    )
    values = oracle.populate_space("0")["values"]
    spec = tuning.spec_from_values(values)
    assert space.contains(spec)
    assert [s.depth for s in spec.stages] == sorted(s.depth for s in spec.stages)
    assert [s.width for s in spec.stages] == sorted(s.width for s in spec.stages)
    assert values["tuner/epochs"] == 2 and 3e5 <= values["flops"] <= 3e6


@pytest.mark.parametrize("name", ["AnyNetX_C", "RegNet"])
def test_projected_proposals_record_the_projected_values(monkeypatch, name):
    space = (
        small_space(name)
        if name != "RegNet"
        else design_spaces.get("RegNet", flops=(3e5, 3e6), input_shape=(32, 32, 1), classes=10)
    )
    oracle = tuning.BayesianOptimizationOracle(
        space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=1, num_initial_points=0
    )
    for seed in range(200):  # a draw that stays in the window with b = 2, g = 16
        _, params = space.sample_with_params(np.random.default_rng(seed))
        proposal = {k: (v * 1.01 if isinstance(v, float) and k.startswith("w_") else v) for k, v in params.items()}
        proposal.update(bottleneck_ratio=1.7, group_width=13.0)  # off the grid: projected to 2 and 16
        if space.project_with_params(proposal) is not None:
            break
    monkeypatch.setattr(
        keras_tuner.oracles.BayesianOptimizationOracle,
        "populate_space",
        lambda self, trial_id: {"status": "RUNNING", "values": dict(proposal)},
    )
    values = oracle.populate_space("0")["values"]
    spec, projected = space.project_with_params(proposal)
    assert values["bottleneck_ratio"] == 2.0 and values["group_width"] == 16
    for key, value in projected.items():  # not the defaults: what the projected network has
        assert values[key] == value, key
    assert spec == tuning.spec_from_values(values)
    if name == "RegNet":
        assert {"w_0", "w_a", "w_m", "depth"} <= set(values)


def test_oracles_use_only_keras_tuner_public_names():
    """The constrained oracles override populate_space/get_state/set_state, no private KerasTuner name."""
    import inspect

    source = inspect.getsource(tuning.DesignSpaceOracleMixin) + "".join(
        inspect.getsource(c)
        for c in (tuning.RandomSearchOracle, tuning.HyperbandOracle, tuning.BayesianOptimizationOracle)
    )
    for private in ("_random_values", "_duplicate", "_seed_state", "_max_collisions", "_tried_so_far"):
        assert private not in source, private


def test_bayesian_oracle_samples_the_space_before_its_model(monkeypatch):
    space = small_space("AnyNetX_E")
    oracle = tuning.BayesianOptimizationOracle(
        space=space, objective=tuning.OBJECTIVE, max_trials=5, seed=1, num_initial_points=2
    )
    monkeypatch.setattr(
        keras_tuner.oracles.BayesianOptimizationOracle,
        "populate_space",
        lambda self, trial_id: pytest.fail("the model was asked before the initial points"),
    )
    values = oracle.populate_space("0")["values"]
    widths = [values[f"width_{i}"] for i in range(1, 5)]
    assert widths == sorted(widths) and space.contains(tuning.spec_from_values(values))


def test_registered_search_space_covers_free_parameters():
    hp = tuning.register_search_space(small_space("AnyNetX_C"))
    names = {h.name for h in hp.space}
    assert {"depth_1", "width_4", "bottleneck_ratio", "group_width"} <= names
    regnet = tuning.register_search_space(design_spaces.get("RegNet"))
    assert {h.name for h in regnet.space} == {"depth", "w_0", "w_a", "w_m", "bottleneck_ratio", "group_width"}


def test_parse_window():
    assert flags.parse_window("1M:20M") == (1e6, 2e7)
    assert flags.parse_window("500k:") == (5e5, None)
    for bad in ("20M:1M", "1M", "x:y", "1M:1M"):
        with pytest.raises(ValueError, match="--flops"):
            flags.parse_window(bad)


def test_random_search_end_to_end(tmp_path):
    out = tmp_path / "search"
    args = ["search", "--space", "AnyNetX_E", "--tuner", "random", "--epochs", "1", "--out", str(out), "--seed", "1"]
    result = run_cli(*args, "--max-trials", "2", *SEARCH_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [l for l in result.stdout.splitlines() if l.startswith("trial ")]
    assert len(progress) == 2 and all("flops" in l and "val_error" in l for l in progress)
    rows = csv_rows(out / "trials.csv")
    assert len(rows) == 2 and {r["status"] for r in rows} == {"COMPLETED"}
    space = small_space("AnyNetX_E")
    for row in rows:
        assert 0 <= float(row["val_error"]) <= 1 and float(row["seconds"]) > 0
        spec = tuning.spec_from_values(
            {
                k: float(v) if "ratio" in k else v
                for k, v in row.items()
                if k.split("_")[0] in ("depth", "width", "group", "bottleneck")
                for v in [float(v) if "ratio" in k else int(v)]
            }
        )
        assert space.contains(spec) and int(row["flops"]) == space.complexity(spec).flops
    assert (out / "best_model.keras").exists() and (out / "best_trial.json").exists()
    # The same folder with another training subset is another search: refused, nothing trained.
    again = run_cli(*args, "--max-trials", "3", "--train-examples", "300", *SEARCH_FLAGS)
    assert again.returncode == 2 and "train_examples None there, 300 here" in again.stderr, again.stderr[-2000:]
    assert len(csv_rows(out / "trials.csv")) == 2


def test_bayesian_and_hyperband_searches_run(tmp_path):
    space = small_space("AnyNetX_C")
    config = search.SearchConfig(max_trials=3, epochs=1, image_size=32, batch_size=64, save_best=False)
    records = search.run_search(space, config, tuner="bayesian", out=str(tmp_path / "bayes"))
    assert len(records) == 3 and all(r["status"] == "COMPLETED" for r in records)
    # two random initial points, then a Gaussian-process proposal projected onto the space
    for record in records:
        values = {
            k: v
            for k, v in record.items()
            if k.split("_")[0] in ("depth", "width", "group", "bottleneck") or k in ("block", "stem_width")
        }
        assert space.contains(tuning.spec_from_values(values))
    records = search.run_search(space, config, tuner="hyperband", epochs=2, out=str(tmp_path / "hb"))
    assert 1 <= len(records) <= 3 and any(r.get("epochs") for r in records)


def test_bad_search_input_is_one_clear_line(tmp_path):
    cases = [
        (["--space", "AnyNetX_Z"], "--space"),
        (["--flops", "5M:1M"], "empty"),
        (["--flops", "1:2"], "window"),
        (["--depth", "3:1"], "--depth"),
    ]
    for bad_flags, message in cases:
        result = run_cli(
            "search",
            "--out",
            str(tmp_path / "bad"),
            "--max-trials",
            "1",
            "--epochs",
            "1",
            "--image-size",
            "32",
            *bad_flags,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and message in result.stderr


def test_killed_search_resumes_without_losing_or_rerunning_trials(tmp_path):
    out = tmp_path / "resume"
    args = [
        sys.executable,
        "-m",
        "apps.cli",
        "search",
        "--space",
        "AnyNetX_A",
        "--max-trials",
        "3",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--seed",
        "5",
        *SEARCH_FLAGS,
    ]
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:

        def one_done():
            path = out / "trials.csv"
            return path.exists() and any(r["status"] == "COMPLETED" for r in csv_rows(path))

        wait_for(one_done, 300, "a completed trial")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait(30)
    before = {r["trial_id"]: r for r in csv_rows(out / "trials.csv") if r["status"] == "COMPLETED"}
    assert before
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    after = csv_rows(out / "trials.csv")
    assert len(after) == 3 and len({r["trial_id"] for r in after}) == 3
    assert all(r["status"] == "COMPLETED" for r in after)
    rerun_ids = {l.split()[1] for l in second.stdout.splitlines() if l.startswith("trial ")}
    assert not rerun_ids & set(before), "a completed trial was run again"
    for row in after:
        if row["trial_id"] in before:
            assert row == before[row["trial_id"]]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_search_chief_and_two_workers(tmp_path):
    out, port = tmp_path / "dist", _free_port()
    common = [
        sys.executable,
        "-m",
        "apps.cli",
        "search",
        "--space",
        "AnyNetX_B",
        "--max-trials",
        "3",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--oracle-port",
        str(port),
        *SEARCH_FLAGS,
    ]
    run_chief_and_workers(common, ("w1", "w2"), tmp_path, timeout=600)
    ran = {
        name: [l.split()[1] for l in (tmp_path / f"{name}.log").read_text().splitlines() if l.startswith("trial ")]
        for name in ("w1", "w2")
    }
    assert ran["w1"] and ran["w2"], ran
    rows = csv_rows(out / "trials.csv")
    assert sorted(r["trial_id"] for r in rows) == sorted(ran["w1"] + ran["w2"])
    assert all(r["status"] == "COMPLETED" for r in rows)


def test_keras_tuner_state_files_are_replaced_atomically(tmp_path, monkeypatch):
    """oracle.json / trial.json: a write killed half-way leaves the previous file, so a rerun reloads."""
    from keras_tuner.src import utils

    assert utils.save_json is tuning._atomic_save_json
    path = tmp_path / "oracle.json"
    utils.save_json(str(path), {"trials": 1})
    monkeypatch.setattr(tuning.run_folder.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        utils.save_json(str(path), {"trials": 2})
    assert utils.load_json(str(path)) == {"trials": 1}


def test_a_trial_orphaned_by_a_kill_between_keras_tuners_two_writes_is_rerun(tmp_path):
    """KerasTuner writes trial.json, then oracle.json: a kill in between must not strand the trial."""
    config = search.SearchConfig(max_trials=2, epochs=1, image_size=32, batch_size=64, out=str(tmp_path), workers=1)
    space = small_space("AnyNetX_E")
    ds = config.load_data()
    oracle_file = tmp_path / "tuner" / "oracle.json"
    first = search.prepare_search(space, ds, config)
    before = oracle_file.read_text()
    trial = first.tuner.oracle.create_trial("tuner0-w0")  # writes trial_0/trial.json, then oracle.json
    oracle_file.write_text(before)  # ... as if killed between the two writes
    resumed = search.prepare_search(space, ds, config)
    again = resumed.tuner.oracle.create_trial("tuner0-w1")
    assert again.trial_id == trial.trial_id and again.status == "RUNNING"
    assert again.hyperparameters.values == trial.hyperparameters.values
    assert len(resumed.tuner.oracle.trials) == 1


# --------------------------------------------------------------------------- KerasTuner's own API


def tiny_space(**overrides):
    settings = dict(depth=(1, 1), width=(8, 32), flops=(1e4, 1e7), input_shape=(32, 32, 3), classes=10)
    return design_spaces.get("AnyNetX_E", **{**settings, **overrides})


def random_images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32"), rng.integers(0, 10, n)


def hparams_of_trial_logs(logdir):
    """{trial_id: {name: value}} from the hparams plugin's session-start records under `logdir`."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    found = {}
    for path in Path(logdir).rglob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != metadata.PLUGIN_NAME:
                    continue
                if value.tag != metadata.SESSION_START_INFO_TAG:
                    continue
                info = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                found[info.group_name] = {name: getattr(v, v.WhichOneof("kind")) for name, v in info.hparams.items()}
    return found


def test_keras_tuner_snippet_with_tensorboard_hparams_and_resume(tmp_path):
    import keras

    space = tiny_space()
    x, y = random_images()
    tuner = tuning.RandomSearch(
        space, objective="val_accuracy", max_trials=2, directory=str(tmp_path / "runs"), project_name="e"
    )
    assert isinstance(tuner, keras_tuner.RandomSearch) and isinstance(tuner.oracle, tuning.RandomSearchOracle)
    tuner.search(x, y, validation_split=0.2, epochs=1, callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "logs"))])
    model = tuner.get_best_models(1)[0]
    assert model.predict(x[:2], verbose=0).shape == (2, 10)
    assert model.evaluate(x, y, verbose=0)[1] >= 0  # compiled: loss and accuracy
    best = tuner.get_best_hyperparameters(1)[0]
    assert space.contains(tuning.spec_from_values(best.values)) and best.values["flops"] > 0
    trials = tuner.oracle.trials
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials.values())
    tuner.results_summary()
    tuner.search_space_summary()

    # TensorBoard's HParams dashboard: every trial's design values, flops and params included.
    logged = hparams_of_trial_logs(tmp_path / "logs")
    assert len(logged) == 2, logged
    for trial_id, trial in trials.items():
        hparams = logged[trial_id]
        assert set(hparams) == set(trial.hyperparameters.values)  # every design value, nothing else
        for name in ("depth_1", "width_1", "width_4", "bottleneck_ratio", "group_width", "flops", "params"):
            assert hparams[name] == pytest.approx(trial.hyperparameters.values[name]), name

    # Reloaded (overwrite=False): finished trials are kept, not trained again; a larger budget adds one.
    trained = []

    class CountTrainings(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            trained.append(1)

    again = tuning.RandomSearch(
        "AnyNetX_E",
        depth=(1, 1),
        width=(8, 32),
        flops=(1e4, 1e7),
        input_shape=(32, 32, 3),
        classes=10,
        objective="val_accuracy",
        max_trials=3,
        directory=str(tmp_path / "runs"),
        project_name="e",
        overwrite=False,
    )
    again.search(x, y, validation_split=0.2, epochs=1, callbacks=[CountTrainings()], verbose=0)
    assert len(trained) == 1 and len(again.oracle.trials) == 3
    for trial_id, trial in trials.items():
        assert again.oracle.trials[trial_id].score == trial.score
        assert again.oracle.trials[trial_id].hyperparameters.values == trial.hyperparameters.values
    networks = [tuning._network(t.hyperparameters.values) for t in again.oracle.trials.values()]
    assert len({json.dumps(n, sort_keys=True) for n in networks}) == 3


def test_keras_tuner_tuner_with_our_oracle_and_hypermodel(tmp_path):
    import tensorflow as tf

    space = tiny_space()
    x, y = random_images()
    train = tf.data.Dataset.from_tensor_slices((x[:32], y[:32])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[32:], y[32:])).batch(16)
    tuner = keras_tuner.Tuner(
        oracle=tuning.RandomSearchOracle(space, objective="val_accuracy", max_trials=2, seed=4),
        hypermodel=tuning.DesignSpaceHyperModel(space),
        directory=str(tmp_path),
        project_name="blocks",
    )
    tuner.search(train, validation_data=val, epochs=1, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    model = tuner.get_best_models(1)[0]
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)


def test_a_users_build_with_spec_from_hp(tmp_path):
    import keras

    from keras_regnet.models import AnyNet

    space = tiny_space()
    x, y = random_images()
    built = []

    def build(hp):  # the user's own head and compile step
        spec = tuning.spec_from_hp(hp, space)
        built.append((dict(hp.values), spec))
        model = AnyNet(spec, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
        return model

    tuner = keras_tuner.Tuner(
        oracle=tuning.RandomSearchOracle(space=space, objective="val_accuracy", max_trials=2, seed=2),
        hypermodel=build,
        directory=str(tmp_path),
        project_name="own",
    )
    assert len(built) == 1 and "flops" not in built[0][0]  # KerasTuner's first call, default values
    tuner.search(x, y, validation_split=0.25, epochs=1, verbose=0)
    trials = [t for _, t in sorted(tuner.oracle.trials.items())]
    assert [t.status for t in trials] == ["COMPLETED", "COMPLETED"]
    assert [spec for _, spec in built[1:3]] == [tuning.spec_from_values(t.hyperparameters.values) for t in trials]
    # ... and on a fully empty hp, as a plain KerasTuner oracle would give it
    assert space.contains(tuning.spec_from_hp(keras_tuner.HyperParameters(), space))
    assert tuning.spec_from_hp({}, "AnyNetX_A") == tuning.spec_from_hp(keras_tuner.HyperParameters(), "AnyNetX_A")


def test_hypermodel_takes_shape_and_classes_from_the_space_and_counts_steps():
    space = tiny_space()
    hypermodel = tuning.DesignSpaceHyperModel(space)
    assert hypermodel.input_shape == (32, 32, 3) and hypermodel.classes == 10
    model = hypermodel.build(keras_tuner.HyperParameters())
    assert model.optimizer is not None and model.output_shape == (None, 10)
    x, y = random_images(100)
    assert tuning.steps_from_fit_arguments(model.fit, (x, y), {"validation_split": 0.2}) == 3  # 80 / 32
    assert tuning.steps_from_fit_arguments(model.fit, (x, y), {"batch_size": 10}) == 10
    assert tuning.steps_from_fit_arguments(model.fit, (x,), {"steps_per_epoch": 7}) == 7

    def generator():
        yield x[:4], y[:4]

    with pytest.raises(ValueError, match="steps per epoch"):
        hypermodel.fit(keras_tuner.HyperParameters(), model, generator(), epochs=1)
    compiled = []
    own = tuning.DesignSpaceHyperModel(space, compile=lambda m: compiled.append(m) or m.compile("adam", "mse"))
    model = own.build(keras_tuner.HyperParameters())
    assert compiled == [model] and model.loss == "mse"


def test_hyperband_and_bayesian_tuners_are_keras_tuners_over_the_space(tmp_path):
    space = tiny_space()
    hyperband = tuning.Hyperband(
        space, objective="val_accuracy", max_epochs=2, seed=1, directory=str(tmp_path), project_name="hb"
    )
    assert isinstance(hyperband, keras_tuner.Hyperband) and isinstance(hyperband.oracle, tuning.HyperbandOracle)
    assert hyperband.oracle.max_epochs == 2 and hyperband.oracle.space == space
    bayes = tuning.BayesianOptimization(
        space, objective="val_accuracy", max_trials=3, num_initial_points=1, directory=str(tmp_path), project_name="bo"
    )
    assert isinstance(bayes, keras_tuner.BayesianOptimization) and bayes.oracle.num_initial_points == 1
    assert isinstance(bayes.hypermodel, tuning.DesignSpaceHyperModel)
    with pytest.raises(TypeError, match="default hypermodel"):
        tuning.RandomSearch(space, hypermodel=lambda hp: None, steps_per_epoch=3, directory=str(tmp_path))


def test_design_values_are_not_new_entries_of_the_oracles_space(tmp_path):
    space = tiny_space()
    oracle = tuning.RandomSearchOracle(
        space, objective="val_accuracy", max_trials=2, seed=3, allow_new_entries=False, tune_new_entries=True
    )
    keras_tuner.Tuner(oracle=oracle, hypermodel=tuning.DesignSpaceHyperModel(space), directory=str(tmp_path))
    before = [h.name for h in oracle.hyperparameters.space]
    trial = oracle.create_trial("tuner0")
    assert {"flops", "params", "width_1"} <= {h.name for h in trial.hyperparameters.space}  # for HParams
    oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)  # KerasTuner would refuse new entries here, or tune them
    assert [h.name for h in oracle.hyperparameters.space] == before
    assert oracle.trials[trial.trial_id].status == "COMPLETED"


def test_oracle_takes_the_space_positionally_or_by_name():
    space = small_space("AnyNetX_E")
    by_position = tuning.RandomSearchOracle(space, objective="val_accuracy", max_trials=3, seed=5)
    by_keyword = tuning.RandomSearchOracle(space=space, objective="val_accuracy", max_trials=3, seed=5)
    assert by_position.sample_values() == by_keyword.sample_values()
    assert tuning.RandomSearchOracle("AnyNetX_B", max_trials=1).space == design_spaces.get("AnyNetX_B")
    with pytest.raises(TypeError, match="already a space"):
        tuning.RandomSearch(space, flops=(1e6, 2e6))
    with pytest.raises(TypeError, match="design space"):
        tuning.RandomSearchOracle(3)


# --------------------------------------------------------------------------- KerasTuner's optimizer=, loss=, metrics=


def training_records(seen):
    """A callback that records, as each execution starts training, the model it trains."""
    import keras

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model)

    return Record()


def learning_rate_config(optimizer):
    """The optimizer's learning rate as its config: a float, or a schedule's serialized config."""
    rate = optimizer.get_config()["learning_rate"]
    return rate["config"] if isinstance(rate, dict) else rate


@pytest.mark.parametrize("setup", ["random", "bayesian", "hyperband", "compile", "keras_tuner"])
def test_a_tuners_optimizer_trains_every_execution_as_a_fresh_copy(tmp_path, setup):
    """KerasTuner's optimizer=: each build is recompiled with a copy of it, and fit keeps it (not the recipe's SGD)."""
    import keras

    from keras_regnet import optimizers

    space = tiny_space()
    x, y = random_images()
    sgd = keras.optimizers.SGD(learning_rate=0.0123, momentum=0.37)
    common = dict(objective="val_accuracy", optimizer=sgd, metrics=["accuracy"], directory=str(tmp_path))
    executions = 1 if setup == "hyperband" else 2
    steps = 4 if setup == "hyperband" else 2  # 40 images in batches of 32, an epoch (Hyperband: max_epochs)
    if setup == "random":
        tuner = tuning.RandomSearch(space, max_trials=1, executions_per_trial=2, **common)
    elif setup == "bayesian":
        tuner = tuning.BayesianOptimization(space, max_trials=1, executions_per_trial=2, **common)
    elif setup == "hyperband":  # one bracket of one network at max_epochs=2
        tuner = tuning.Hyperband(space, max_epochs=2, hyperband_iterations=1, **common)
    elif setup == "compile":  # the tuner's optimizer wins over the hypermodel's own compile step
        adam = lambda m: m.compile(keras.optimizers.Adam(0.5), "sparse_categorical_crossentropy")  # noqa: E731
        hypermodel = tuning.DesignSpaceHyperModel(space, compile=adam)
        tuner = tuning.RandomSearch(space, hypermodel=hypermodel, max_trials=1, executions_per_trial=2, **common)
    else:  # KerasTuner's own Tuner with our hypermodel
        oracle = tuning.RandomSearchOracle(space, objective="val_accuracy", max_trials=1, seed=1)
        del common["objective"]
        tuner = keras_tuner.Tuner(oracle, tuning.DesignSpaceHyperModel(space), executions_per_trial=2, **common)
    seen = []
    tuner.search(x, y, validation_data=(x[:8], y[:8]), epochs=1, callbacks=[training_records(seen)], verbose=0)

    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * len(trials)
    assert len(seen) == executions * len(trials) and len(trials) == (1 if setup != "hyperband" else len(seen))
    trained = [model.optimizer for model in seen]
    for optimizer in trained:
        assert type(optimizer) is keras.optimizers.SGD and not isinstance(optimizer, optimizers.SGD)
        assert learning_rate_config(optimizer) == pytest.approx(0.0123) and optimizer.momentum == 0.37
        assert optimizer.weight_decay is None and int(optimizer.iterations) == steps  # it trained the model
    assert len({id(o) for o in trained + [sgd]}) == len(trained) + 1  # a copy per build, the user's untouched
    assert not sgd.built
    if setup != "compile":  # the recipe's loss stays
        assert all(isinstance(m.loss, keras.losses.SparseCategoricalCrossentropy) for m in seen)
    if setup in ("random", "bayesian"):
        assert trials[0].metrics.get_history("val_accuracy") and tuner.executions_per_trial == 2


def _search_with_the_users_loss_and_metrics(tmp_path, **tuner_arguments):
    """One trial of a RandomSearch given loss= and metrics= (top-2 accuracy): (the model it trained, loss, trial)."""
    import keras

    x, y = random_images()
    loss = keras.losses.SparseCategoricalCrossentropy(name="user_loss")
    tuner = tuning.RandomSearch(
        tiny_space(),
        objective="val_accuracy",
        max_trials=1,
        loss=loss,
        metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2")],
        directory=str(tmp_path),
        **tuner_arguments,
    )
    seen = []
    fit = dict(validation_data=(x[:8], y[:8]), epochs=1, batch_size=8, verbose=0)
    tuner.search(x, y, callbacks=[training_records(seen)], **fit)
    (model,) = seen
    trial = next(iter(tuner.oracle.trials.values()))
    assert {"accuracy", "top2", "val_accuracy", "val_top2"} <= set(trial.metrics.metrics)
    return model, loss


def test_a_tuners_optimizer_by_name_and_its_loss_and_metrics(tmp_path):
    import keras

    model, loss = _search_with_the_users_loss_and_metrics(tmp_path, optimizer="adam")
    assert type(model.optimizer) is keras.optimizers.Adam and model.loss is loss


def test_a_tuners_loss_and_metrics_keep_the_recipes_optimizer_sized_to_the_data(tmp_path):
    """loss=/metrics= alone: KerasTuner keeps the built optimizer; fit sizes the recipe's schedule and keeps them."""
    import dataclasses

    from keras_regnet import optimizers, training

    model, loss = _search_with_the_users_loss_and_metrics(tmp_path)
    expected = training.make_learning_rate(dataclasses.replace(training.TrainConfig(), epochs=1), 5).get_config()
    assert isinstance(model.optimizer, optimizers.SGD) and learning_rate_config(model.optimizer) == expected
    assert model.optimizer.momentum == 0.9 and int(model.optimizer.iterations) == 5  # 40 images, batches of 8
    assert model.loss is loss


def test_the_hypermodels_fit_leaves_a_model_that_is_not_on_the_recipes_optimizer_alone():
    import keras

    hypermodel = tuning.DesignSpaceHyperModel(tiny_space())
    model = hypermodel.build(keras_tuner.HyperParameters())
    model.compile(optimizer=keras.optimizers.SGD(0.0123, momentum=0.37), loss=model.loss)  # as a tuner's optimizer=
    own = model.optimizer
    x, y = random_images(8)

    def generator():  # no length: the recipe's schedule could not be sized, a user's optimizer needs none
        yield x, y

    hypermodel.fit(keras_tuner.HyperParameters(), model, generator(), epochs=1, verbose=0)
    assert model.optimizer is own and int(own.iterations) > 0


def test_a_tuners_bad_compile_overrides_are_clear_errors(tmp_path):
    import keras

    space = tiny_space()
    cases = [
        ({"optimizer": keras.optimizers.SGD}, TypeError, "optimizer must be .* got the class SGD"),
        ({"optimizer": "nope"}, ValueError, "optimizer='nope'"),
        ({"optimizer": 0.1}, TypeError, "optimizer must be"),
        ({"loss": 3}, TypeError, "loss must be"),
        ({"metrics": "accuracy"}, TypeError, r"metrics must be a list"),
    ]
    for given, error, message in cases:
        with pytest.raises(error, match=message):
            tuning.RandomSearch(space, objective="val_accuracy", max_trials=1, directory=str(tmp_path), **given)
