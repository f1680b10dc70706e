"""Tests for keras_regnet.data: offline, small, no downloads ever."""

import gzip
import os
import pickle
import socket
import struct
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_regnet import data, dataset_files


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a Python-level connection fails the test."""

    def refuse(*args, **kwargs):
        raise RuntimeError("keras_regnet.data tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def collect(split):
    """All (images, labels) of a batched split as numpy arrays."""
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in split))
    return np.concatenate(images), np.concatenate(labels)


def first_batch(split):
    x, y = next(iter(split))
    return x.numpy(), y.numpy()


# ----------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", batch_size=64)


def test_digits_loads_offline_with_documented_metadata(digits):
    assert digits.name == "digits"
    assert digits.num_classes == 10
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.input_shape == (32, 32, 1)
    assert digits.steps_per_epoch == digits.num_examples["train"] // 64  # full batches only


def test_train_split_drops_its_partial_batch_and_the_others_keep_theirs(digits):
    """A batch of a few images through batch norm wrecked training (bench/README.md, "Study recipe")."""
    sizes = [int(x.shape[0]) for x, _ in digits.train]
    assert len(sizes) == digits.steps_per_epoch and set(sizes) == {64}
    assert sum(int(x.shape[0]) for x, _ in digits.validation) == digits.num_examples["validation"]
    tiny = data.load("digits", batch_size=5000)  # larger than the split: one (partial) batch, not none
    assert tiny.steps_per_epoch == 1 and [int(x.shape[0]) for x, _ in tiny.train] == [tiny.num_examples["train"]]
    assert "digits" in data.DATASETS and data.available_datasets() == data.DATASETS


def test_digits_batches_shapes_dtypes_and_range(digits):
    x, y = first_batch(digits.train)
    assert x.shape == (64, 32, 32, 1) and x.dtype == np.float32
    assert y.shape == (64,) and y.dtype == np.int32
    assert x.min() >= 0.0 and x.max() <= 255.0
    assert x.max() > 200.0  # rescaled from 0..16 to 0..255, not left raw
    assert set(np.unique(y)) <= set(range(10))
    assert digits.train.element_spec[0].shape.as_list() == [64, 32, 32, 1]  # full batches only
    assert digits.validation.element_spec[0].shape.as_list() == [None, 32, 32, 1]


def test_digits_splits_cover_dataset_and_are_stratified(digits):
    n = digits.num_examples
    assert sum(n.values()) == 1797
    assert n["train"] > n["test"] > n["validation"] > 0
    assert abs(n["validation"] / 1797 - 0.10) < 0.01 and abs(n["test"] / 1797 - 0.15) < 0.01
    for split in ("train", "validation", "test"):
        images, labels = collect(getattr(digits, split))
        assert len(labels) == (n[split] // 64 * 64 if split == "train" else n[split])  # train: full batches
        counts = np.bincount(labels, minlength=10)
        assert (counts > 0).all(), (split, counts)
        # Stratified: each class's share matches the whole dataset's (~10%) closely.
        assert np.abs(counts / counts.sum() - 0.1).max() < 0.02, (split, counts)


def test_digits_pixels_are_the_rescaled_originals():
    from sklearn.datasets import load_digits

    ds = data.load("digits", image_size=8, batch_size=1)  # 8x8: resize is the identity; batch 1 drops nothing
    images = np.concatenate([collect(getattr(ds, s))[0] for s in ("train", "validation", "test")])
    expected = np.round(load_digits().images * 255.0 / 16.0)
    # Same multiset of images: compare sorted per-image pixel sums and the exact pixel values.
    np.testing.assert_allclose(np.sort(images.sum(axis=(1, 2, 3))), np.sort(expected.sum(axis=(1, 2))), atol=1e-3)
    assert set(np.unique(images)) == set(np.unique(expected))


@pytest.mark.parametrize(
    "image_size, channels, shape",
    [
        (20, None, (20, 20, 1)),
        ((16, 24), 3, (16, 24, 3)),
    ],
)
def test_digits_resize_and_channels(image_size, channels, shape):
    ds = data.load("digits", image_size=image_size, channels=channels, batch_size=8)
    assert ds.input_shape == shape
    x, _ = first_batch(ds.test)
    assert x.shape == (8, *shape)
    if shape[-1] == 3:  # grayscale converted to RGB: equal channels
        np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_same_seed_is_deterministic_and_train_reshuffles_each_epoch():
    a = data.load("digits", seed=3, batch_size=32)
    b = data.load("digits", seed=3, batch_size=32)
    xa, ya = first_batch(a.train)
    xb, yb = first_batch(b.train)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(collect(a.test)[1], collect(b.test)[1])
    # A new epoch (new iterator) is a new order; another seed is another order.
    assert not np.array_equal(first_batch(a.train)[1], first_batch(a.train)[1])
    other = data.load("digits", seed=4, batch_size=32)
    assert not np.array_equal(first_batch(other.train)[1], yb)
    # Validation and test are not shuffled: two passes give the same order.
    np.testing.assert_array_equal(collect(a.validation)[1], collect(a.validation)[1])


def test_digits_split_does_not_depend_on_seed():
    a, b = data.load("digits", seed=1), data.load("digits", seed=2)
    np.testing.assert_array_equal(collect(a.test)[0], collect(b.test)[0])


def image_rows(split):
    """A split's (image, label) pairs as sorted byte strings: its multiset of examples, order aside."""
    x, y = collect(split)
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(x.astype(np.uint8), y))


def test_digits_train_examples_is_a_fixed_stratified_subset_and_the_rest_is_validated():
    load = lambda **kw: data.load("digits", image_size=8, batch_size=200, **kw)  # noqa: E731 (8x8: no resize)
    full = data.load("digits", image_size=8, batch_size=2000)  # one batch per split: train drops nothing
    ds, again = load(train_examples=200, seed=1), load(train_examples=200, seed=2)
    n = full.num_examples
    assert ds.num_examples == {"train": 200, "validation": n["validation"] + n["train"] - 200, "test": n["test"]}
    assert ds.steps_per_epoch == 1
    counts = np.bincount(collect(ds.train)[1], minlength=10)
    assert (counts > 0).all() and counts.max() - counts.min() <= 2, counts  # stratified
    assert image_rows(ds.train) == image_rows(again.train)  # fixed: the seed only shuffles
    assert image_rows(ds.test) == image_rows(full.test)
    # Every image of the would-be train split is trained on or validated, none both.
    assert sorted(image_rows(ds.train) + image_rows(ds.validation)) == sorted(
        image_rows(full.train) + image_rows(full.validation)
    )
    smaller = load(train_examples=100)
    assert set(image_rows(smaller.train)) <= set(image_rows(ds.train))  # nested: 100 of the 200
    with pytest.raises(ValueError, match=rf"`train_examples` must be at most {n['train']}\b.*5000"):
        data.load("digits", train_examples=5000)


def test_train_examples_of_official_files_and_folders(tmp_path, nowhere):
    folder = write_fashion_files(tmp_path / "files")  # 40 train images, 4 per class: 30 train at 0.25
    ds = data.load(
        "fashion_mnist", data_dir=str(folder), image_size=8, batch_size=5, validation_fraction=0.25, train_examples=10
    )
    assert ds.num_examples == {"train": 10, "validation": 30, "test": 10} and ds.steps_per_epoch == 2
    train, validation = ids_of(ds.train), ids_of(ds.validation)
    assert np.bincount(train % 10).tolist() == [1] * 10  # one of each class
    assert sorted([*train, *validation]) == list(range(40))
    with pytest.raises(ValueError, match="`train_examples` must be at most 30.*31"):
        data.load("fashion_mnist", data_dir=str(folder), validation_fraction=0.25, train_examples=31)
    root = tmp_path / "fruit"
    for cls, color in COLORS.items():  # 8 per class: 1 validation, 1 test, 6 train
        (root / cls).mkdir(parents=True)
        for i in range(8):
            write_image(str(root / cls / f"{i}.png"), np.full((8, 8, 3), color, np.uint8))
    images = data.load(str(root), image_size=8, batch_size=4, train_examples=12)
    assert images.num_examples == {"train": 12, "validation": 9, "test": 3}
    assert np.bincount(collect(images.train)[1]).tolist() == [4, 4, 4]


def test_augmentation_changes_train_only_and_only_translates_digits():
    plain = data.load("digits", image_size=8, batch_size=64, seed=5)
    aug = data.load("digits", image_size=8, batch_size=64, seed=5, augment=True)
    x0, y0 = first_batch(plain.train)
    x1, y1 = first_batch(aug.train)
    np.testing.assert_array_equal(y0, y1)  # same shuffle order, same labels
    changed = [not np.array_equal(a, b) for a, b in zip(x0, x1)]
    assert sum(changed) > len(changed) // 2
    assert x1.min() >= 0.0 and x1.max() <= 255.0
    np.testing.assert_array_equal(collect(plain.test)[0], collect(aug.test)[0])
    np.testing.assert_array_equal(collect(plain.validation)[0], collect(aug.validation)[0])
    # Every augmented digit is its original shifted by at most 1 pixel (zero fill),
    # never mirrored: flips would turn digits into other symbols.
    padded = np.pad(x0[..., 0], ((0, 0), (1, 1), (1, 1)))
    for i, image in enumerate(x1[..., 0]):
        shifts = [padded[i, 1 + dy : 9 + dy, 1 + dx : 9 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(np.array_equal(image, s) for s in shifts), f"example {i} is not a translation"


# ----------------------------------------------------------------------------- TFDS


@pytest.mark.parametrize("name", ["kmnist", "cifar100"])
def test_tfds_not_prepared_fails_immediately_with_instructions(name, tmp_path):
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        data.load(name, data_dir=str(tmp_path))
    assert time.monotonic() - start < 5.0
    message = str(info.value)
    assert repr(name) in message and str(tmp_path) in message
    assert f"tfds build {name} --data_dir" in message and "--data-dir" in message
    assert os.listdir(tmp_path) == []  # nothing downloaded or created


def test_unknown_dataset_name_suggests_choices(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'fashon_mnist'") as info:
        data.load("fashon_mnist", data_dir=str(tmp_path))
    assert "Did you mean: fashion_mnist" in str(info.value)
    with pytest.raises(ValueError, match="digits, fashion_mnist, mnist, cifar10"):
        data.load("no_such_dataset_qqq", data_dir=str(tmp_path))


def test_tfds_dataset_that_is_not_image_classification_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'imdb_reviews' is not an image-classification"):
        data.load("imdb_reviews", data_dir=str(tmp_path))


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """A real prepared TFDS dataset (train: 40 images, test: 9) built offline."""
    import tensorflow_datasets as tfds

    class KerasRegnetTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(12, 12, 3)),
                        "label": tfds.features.ClassLabel(names=["cat", "dog", "owl"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(range(40)), "test": self._generate_examples(range(40, 49))}

        def _generate_examples(self, ids):
            for i in ids:  # pixel value = example id, so splits can be told apart
                yield i, {"image": np.full((12, 12, 3), i, np.uint8), "label": i % 3}

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("keras_regnet_tiny_images", data_dir=data_dir).download_and_prepare()
    return "keras_regnet_tiny_images", data_dir


def test_prepared_tfds_dataset_carves_validation_from_train(tiny_tfds):
    name, data_dir = tiny_tfds
    ds = data.load(name, data_dir=data_dir, batch_size=5, validation_fraction=0.25, channels=1)
    assert ds.class_names == ["cat", "dog", "owl"] and ds.num_classes == 3
    assert ds.input_shape == (32, 32, 1)  # default size for other TFDS names; RGB -> gray
    assert ds.num_examples == {"train": 30, "validation": 10, "test": 9}
    assert ds.steps_per_epoch == 6
    assert data.load(name, data_dir=data_dir, batch_size=8, validation_fraction=0.25).steps_per_epoch == 3  # 30 // 8
    ids = {}
    for split in ("train", "validation", "test"):
        x, y = collect(getattr(ds, split))
        assert x.shape[1:] == (32, 32, 1) and x.dtype == np.float32 and y.dtype == np.int32
        assert len(y) == ds.num_examples[split]
        example_ids = np.round(x[:, 0, 0, 0]).astype(int)
        np.testing.assert_array_equal(y, example_ids % 3)  # label follows its image
        ids[split] = set(example_ids)
    assert ids["train"] | ids["validation"] == set(range(40))
    assert not ids["train"] & ids["validation"]
    assert ids["test"] == set(range(40, 49))  # the official test split, untouched


def test_prepared_tfds_dataset_rejects_test_fraction_when_test_split_exists(tiny_tfds):
    name, data_dir = tiny_tfds
    with pytest.raises(ValueError, match="test_fraction"):
        data.load(name, data_dir=data_dir, test_fraction=0.2)


def test_prepared_tfds_dataset_refuses_train_examples(tiny_tfds):
    name, data_dir = tiny_tfds
    with pytest.raises(ValueError, match="`train_examples` is not supported for TFDS"):
        data.load(name, data_dir=data_dir, train_examples=12)


# ----------------------------------------------------------------------------- official files


def write_idx(path, magic, dims, values, compress=True):
    """An IDX file: big-endian magic and dimensions, then uint8 values (gzip-compressed by default)."""
    raw = struct.pack(f">I{len(dims)}I", magic, *dims) + np.asarray(values, np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def write_fashion_files(folder, first_id=0, n_train=40, n_test=10, side=8):
    """Tiny Fashion-MNIST files: pixel value = example id, label = id % 10 (train ids first_id.., test +100..)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, start, n in (("train", first_id, n_train), ("t10k", first_id + 100, n_test)):
        ids = np.arange(start, start + n)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", 2051, (len(ids), side, side), np.repeat(ids, side * side))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", 2049, (len(ids),), ids % 10)
    return folder


def ids_of(split):
    x, y = collect(split)
    ids = np.round(x[:, 0, 0, 0]).astype(int)
    np.testing.assert_array_equal(y, ids % 10)  # every label follows its image
    return ids


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10"])
def test_official_files_nowhere_and_offline_is_one_message_naming_every_place(name, nowhere, tmp_path):
    given = tmp_path / "given"
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        data.load(name, data_dir=str(given))
    assert time.monotonic() - start < 5.0
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    assert str(given) in message and "offline" in message and nowhere["online_calls"] == [name]
    assert os.path.join(str(nowhere["keras"]), "datasets") in message and str(nowhere["tfds"]) in message
    if name == "fashion_mnist":
        assert str(nowhere["system"]) in message and "apt-get install dataset-fashion-mnist" in message
        assert "copy the four files into" in message and "fashion-mnist" in message
    assert not (tmp_path / "places").exists() and not given.exists()  # nothing created, nothing downloaded


def test_fashion_mnist_from_data_dir_keeps_the_official_test_split(tmp_path, nowhere):
    folder = write_fashion_files(tmp_path / "files")
    ds = data.load("fashion_mnist", data_dir=str(folder), image_size=8, batch_size=4, validation_fraction=0.25)
    assert ds.class_names == dataset_files.CLASS_NAMES["fashion_mnist"] and ds.input_shape == (8, 8, 1)
    assert ds.num_examples == {"train": 30, "validation": 10, "test": 10} and ds.source == str(folder)
    train, validation, test = ids_of(ds.train), ids_of(ds.validation), ids_of(ds.test)
    assert len(train) == 28  # 30 // 4 full batches
    assert np.bincount(validation % 10).tolist() == [1] * 10  # stratified: one of each class's four
    assert not set(train) & set(validation) and set(validation) <= set(range(40))
    np.testing.assert_array_equal(test, np.arange(100, 110))  # the official test split, in order
    again = data.load("fashion_mnist", data_dir=str(folder), image_size=8, batch_size=4, validation_fraction=0.25)
    np.testing.assert_array_equal(ids_of(again.validation), validation)  # fixed
    with pytest.raises(ValueError, match="test_fraction"):
        data.load("fashion_mnist", data_dir=str(folder), test_fraction=0.2)
    assert nowhere["online_calls"] == []


def test_fashion_mnist_is_read_from_the_first_place_that_has_it(tmp_path, nowhere):
    """data_dir (itself or its fashion-mnist/), then Keras' cache, then the Debian folder."""
    load = lambda **kw: data.load("fashion_mnist", image_size=8, batch_size=64, **kw)  # noqa: E731
    write_fashion_files(nowhere["system"], first_id=20)
    assert load().source == str(nowhere["system"]) and ids_of(load().test)[0] == 120
    cache = write_fashion_files(nowhere["keras"] / "datasets" / "fashion-mnist", first_id=10)
    assert load().source == str(cache) and ids_of(load().test)[0] == 110
    given = write_fashion_files(tmp_path / "given" / "fashion-mnist", first_id=0)
    ds = load(data_dir=str(tmp_path / "given"))
    assert ds.source == str(given) and ids_of(ds.test)[0] == 100
    # Unzipped files (as torchvision leaves them) are read too.
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in given.iterdir():
        (plain / f.name[: -len(".gz")]).write_bytes(gzip.decompress(f.read_bytes()))
    assert load(data_dir=str(plain)).num_examples["test"] == 10
    assert nowhere["online_calls"] == []


def test_a_prepared_tfds_copy_in_data_dir_is_read_with_tfds(tmp_path, nowhere, monkeypatch):
    (tmp_path / "tfds" / "fashion_mnist").mkdir(parents=True)  # not really prepared: TFDS says so, we look on
    with pytest.raises(FileNotFoundError, match="neither the files nor a prepared TFDS fashion_mnist"):
        data.load("fashion_mnist", data_dir=str(tmp_path / "tfds"))
    monkeypatch.setattr(dataset_files, "_tfds_prepared", lambda name, root: root == str(tmp_path / "tfds"))
    calls = []
    monkeypatch.setattr(data, "_tfds_source", lambda *args: calls.append(args) or data._digits_source(0.1, None))
    data.load("fashion_mnist", data_dir=str(tmp_path / "tfds"))
    assert calls == [("fashion_mnist", str(tmp_path / "tfds"), 0.1, None, None)]  # no train_examples


def test_fashion_mnist_is_downloaded_by_keras_only_when_online(tmp_path, nowhere, monkeypatch):
    import keras

    monkeypatch.setattr(dataset_files, "online", lambda name: True)
    x = np.arange(40, dtype=np.uint8).repeat(64).reshape(40, 8, 8)
    arrays = ((x, x[:, 0, 0] % 10), (x[:10] + 100, (x[:10, 0, 0] + 100) % 10))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: arrays)
    ds = data.load("fashion_mnist", image_size=8, batch_size=4, validation_fraction=0.25)
    assert ds.num_examples == {"train": 30, "validation": 10, "test": 10} and "downloaded" in ds.source

    def fail():
        raise Exception("URL fetch failure on https://storage.googleapis.com/x: None -- timed out")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fail)
    with pytest.raises(FileNotFoundError, match="Keras' download failed \\(URL fetch failure") as info:
        data.load("fashion_mnist")
    assert "\n" not in str(info.value) and "dataset-fashion-mnist" in str(info.value)


def test_online_check_is_false_fast_when_connecting_fails_or_hangs(monkeypatch):
    start = time.monotonic()
    assert dataset_files.online("fashion_mnist") is False  # the no_network fixture refuses connections
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: time.sleep(30))
    assert dataset_files.online("cifar10", timeout=0.3) is False
    assert time.monotonic() - start < 3.0


def corrupt(folder, case):
    """Damages tiny Fashion-MNIST files one way -> (the file to name, words the message must hold)."""
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    if case == "wrong magic":
        write_idx(images, 2049, (40, 8, 8), np.zeros(40 * 64))
        return images, "wrong magic number 2049"
    if case == "truncated gzip":
        images.write_bytes(images.read_bytes()[:-30])
        return images, "truncated or corrupt gzip"
    if case == "count mismatch":
        write_idx(labels, 2049, (39,), np.arange(39) % 10)
        return images, "40 images but"
    if case == "label out of range":
        write_idx(labels, 2049, (40,), np.r_[np.arange(39) % 10, 10])
        return labels, "label 10 at index 39 is outside 0..9"
    if case == "header disagrees with the data":
        write_idx(images, 2051, (40, 8, 8), np.zeros(39 * 64))
        return images, "the header says 40 x 8 x 8 (2,560 bytes of data) but the file holds 2,496"
    if case == "too short":
        images.write_bytes(gzip.compress(b"\x00\x00\x08\x03\x00\x00"))
        return images, "too short for the 16-byte header"
    if case == "not gzip":
        images.write_bytes(b"<html>404</html>")
        return images, "truncated or corrupt gzip"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong magic",
        "truncated gzip",
        "count mismatch",
        "label out of range",
        "header disagrees with the data",
        "too short",
        "not gzip",
    ],
)
def test_bad_fashion_mnist_file_is_one_line_naming_it(case, tmp_path, nowhere):
    folder = write_fashion_files(tmp_path / "files")
    path, words = corrupt(folder, case)
    with pytest.raises(ValueError) as info:
        data.load("fashion_mnist", data_dir=str(folder), image_size=8)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message, message


def test_mnist_npz_in_keras_cache_and_a_bad_one(nowhere):
    cache = nowhere["keras"] / "datasets"
    cache.mkdir(parents=True)
    x = np.arange(30, dtype=np.uint8).repeat(64).reshape(30, 8, 8)
    y = x[:, 0, 0] % 10
    np.savez(cache / "mnist.npz", x_train=x, y_train=y, x_test=x[:10] + 100, y_test=(y[:10] + 100) % 10)
    ds = data.load("mnist", image_size=8, batch_size=4)
    assert ds.num_examples == {"train": 20, "validation": 10, "test": 10} and ds.source == str(cache / "mnist.npz")
    assert data.load("mnist", data_dir=str(cache / "mnist.npz")).source == str(cache / "mnist.npz")
    np.testing.assert_array_equal(ids_of(ds.test), np.arange(100, 110))
    (cache / "mnist.npz").write_bytes(b"PK not really")
    with pytest.raises(ValueError, match="mnist.npz: not a readable .npz file"):
        data.load("mnist")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_batches_in_keras_cache_and_a_tampered_one(nowhere):
    folder = nowhere["keras"] / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]):
        ids = np.arange(i * 10, i * 10 + 10)
        batch = {
            b"data": np.repeat(ids, 3 * 32 * 32).astype(np.uint8).reshape(10, 3072),
            b"labels": [int(v) for v in ids % 10],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    ds = data.load("cifar10", batch_size=4)
    assert ds.input_shape == (32, 32, 3) and ds.class_names[0] == "airplane"
    assert ds.num_examples == {"train": 40, "validation": 10, "test": 10} and ds.source == str(folder)
    np.testing.assert_array_equal(ids_of(ds.test), np.arange(50, 60))
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR-10 batch file .*refusing to load"):
        data.load("cifar10")


REAL_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL_FASHION_MNIST, "train-images-idx3-ubyte.gz")),
    reason="the real Fashion-MNIST files are absent (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_files():
    arrays = dataset_files.read("fashion_mnist", REAL_FASHION_MNIST)
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    ds = data.load("fashion_mnist", data_dir=REAL_FASHION_MNIST, batch_size=256)
    assert ds.num_examples == {"train": 54000, "validation": 6000, "test": 10000}
    assert ds.input_shape == (96, 96, 1) and ds.class_names[9] == "Ankle boot"
    x, y = first_batch(ds.test)
    assert x.shape == (256, 96, 96, 1) and y[:5].tolist() == [9, 2, 1, 1, 6]  # the official test order


@pytest.mark.skipif(
    not os.path.exists(os.path.join(REAL_FASHION_MNIST, "train-images-idx3-ubyte.gz")),
    reason="the real Fashion-MNIST files are absent (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_train_examples():
    """The study recipe's fmnist-2k: 2,000 trained on, the other 58,000 train images validated."""
    ds = data.load("fashion_mnist", image_size=32, batch_size=250, validation_fraction=0.1, train_examples=2000)
    assert ds.num_examples == {"train": 2000, "validation": 58000, "test": 10000} and ds.steps_per_epoch == 8
    assert np.bincount(collect(ds.train)[1]).tolist() == [200] * 10


# ----------------------------------------------------------------------------- folders

COLORS = {"apple": (255, 0, 0), "kiwi": (0, 255, 0), "plum": (0, 0, 255)}


def write_image(path, array):
    encode = tf.io.encode_jpeg if path.endswith(".jpg") else tf.io.encode_png
    tf.io.write_file(path, encode(tf.constant(array, tf.uint8)))


@pytest.fixture()
def image_folder(tmp_path):
    root = tmp_path / "fruit"
    for cls, color in COLORS.items():
        (root / cls).mkdir(parents=True)
        for i in range(5):  # different sizes: the loader must resize
            write_image(str(root / cls / f"{i}.png"), np.full((10 + i, 14, 3), color, np.uint8))
    (root / "apple" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_loads_by_path_and_by_folder_name(image_folder):
    ds = data.load(str(image_folder), image_size=16, batch_size=4)
    assert ds.class_names == ["apple", "kiwi", "plum"] and ds.num_classes == 3
    assert ds.input_shape == (16, 16, 3)
    assert sum(ds.num_examples.values()) == 15
    for split in ("train", "validation", "test"):
        x, y = collect(getattr(ds, split))
        assert x.shape[1:] == (16, 16, 3) and x.dtype == np.float32 and y.dtype == np.int32
        assert set(y) == {0, 1, 2}  # every class in every split
        # Each image's colour is its class's colour: labels follow the folders.
        expected = np.array([COLORS[ds.class_names[label]] for label in y])
        np.testing.assert_allclose(x[:, 8, 8, :], expected, atol=1.0)
    same = data.load("folder", data_dir=image_folder, image_size=16, batch_size=4)
    np.testing.assert_array_equal(collect(same.test)[0], collect(ds.test)[0])


def test_image_folder_default_size_channels_and_augment(image_folder):
    ds = data.load(image_folder, channels=1, augment=True, batch_size=32)
    assert ds.input_shape == (64, 64, 1)
    x, _ = first_batch(ds.train)
    assert x.shape[1:] == (64, 64, 1) and 0.0 <= x.min() and x.max() <= 255.0


def test_image_folder_errors_name_the_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=str(empty)):
        data.load(str(empty))
    (empty / "a").mkdir()
    (empty / "b").mkdir()
    with pytest.raises(ValueError, match=str(empty)):  # class folders without images
        data.load(str(empty))
    missing = tmp_path / "missing"
    with pytest.raises(ValueError, match=str(missing)):
        data.load("folder", data_dir=str(missing))
    with pytest.raises(ValueError, match="data_dir"):
        data.load("folder")


def test_image_folder_needs_two_classes_and_three_images_per_class(tmp_path):
    one = tmp_path / "one"
    (one / "a").mkdir(parents=True)
    for i in range(4):
        write_image(str(one / "a" / f"{i}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 2 class"):
        data.load(str(one))
    (one / "b").mkdir()
    write_image(str(one / "b" / "0.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="class 'b' has only 1 example"):
        data.load(str(one))


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        (dict(image_size=4), "image_size"),
        (dict(image_size=32.0), "image_size"),
        (dict(image_size="32"), "image_size"),
        (dict(image_size=True), "image_size"),
        (dict(image_size=(32,)), "image_size"),
        (dict(image_size=(32, 7)), "image_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(validation_fraction=0), "validation_fraction"),
        (dict(validation_fraction=0.5), "validation_fraction"),
        (dict(validation_fraction=-0.1), "validation_fraction"),
        (dict(test_fraction=0.7), "test_fraction"),
        (dict(channels=2), "channels"),
        (dict(seed=-1), "seed"),
        (dict(augment="yes"), "augment"),
        (dict(train_examples=9), "train_examples"),
        (dict(train_examples=200.0), "train_examples"),
        (dict(train_examples="200"), "train_examples"),
        (dict(train_examples=True), "train_examples"),
    ],
)
def test_bad_arguments_raise_value_error_naming_argument(kwargs, arg):
    with pytest.raises(ValueError, match=f"`{arg}`") as info:
        data.load("digits", **kwargs)
    message = str(info.value)
    assert any(word in message for word in (">=", "range", "None, 1 or 3", "True or False"))


def test_bad_name_type():
    with pytest.raises(ValueError, match="`name`"):
        data.load(None)


def add_corrupt_images(root):
    """A truncated JPEG, random bytes named .png and a zero-byte file -> their relative paths."""
    good = root / "kiwi" / "good.jpg"
    write_image(str(good), np.full((12, 12, 3), 80, np.uint8))
    jpeg = good.read_bytes()
    good.unlink()
    (root / "apple" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "kiwi" / "noise.png").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "plum" / "empty.jpeg").write_bytes(b"")
    return [
        os.path.join("apple", "truncated.jpg"),
        os.path.join("kiwi", "noise.png"),
        os.path.join("plum", "empty.jpeg"),
    ]


def test_image_folder_skips_unreadable_images_naming_each(image_folder, capsys):
    bad = add_corrupt_images(image_folder)
    ds = data.load(image_folder, image_size=16, batch_size=4)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipping 3 of 18 image files"), lines
    assert all(name in lines[0] for name in bad)
    assert sorted(ds.skipped_files) == sorted(bad) and sum(ds.num_examples.values()) == 15
    for split in ("train", "validation", "test"):  # no decode error left in any split
        x, _ = collect(getattr(ds, split))
        assert x.shape[1:] == (16, 16, 3)


def test_image_folder_strict_images_refuses_naming_them(image_folder):
    bad = add_corrupt_images(image_folder)
    with pytest.raises(ValueError, match="3 of 18 image files") as info:
        data.load(image_folder, image_size=16, strict_images=True)
    assert all(name in str(info.value) for name in bad) and "--strict-images" in str(info.value)
