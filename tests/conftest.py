import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """Every place `dataset_files.locate` looks is an empty folder under tmp_path, and the machine is offline."""
    from keras_regnet import dataset_files

    places = {name: tmp_path / "places" / name for name in ("keras", "system", "tfds")}
    monkeypatch.setenv("KERAS_HOME", str(places["keras"]))
    monkeypatch.setenv("TFDS_DATA_DIR", str(places["tfds"]))
    monkeypatch.setattr(dataset_files, "SYSTEM_DIRS", {"fashion_mnist": (str(places["system"]),)})
    calls = []
    monkeypatch.setattr(dataset_files, "online", lambda name: calls.append(name) or False)
    places["online_calls"] = calls
    return places
