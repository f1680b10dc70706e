"""The official files of fashion_mnist, mnist and cifar10: found on this machine, read and checked.

Users often have these files already (Keras' cache, Debian's ``dataset-fashion-mnist``), so they
are read where they lie instead of asking for a TFDS preparation. `locate` looks, in this order:

1. ``data_dir``: a folder with the files, or a TFDS data directory where the dataset is prepared;
2. Keras' cache (``$KERAS_HOME/datasets``, else ``~/.keras/datasets``), where
   ``keras.datasets.<name>.load_data()`` keeps them;
3. ``/usr/share/datasets/fashion-mnist/`` (Debian's package; fashion_mnist only);
4. TFDS's default directory (``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), prepared.

Where none has them, `download` runs Keras' own loader (into Keras' cache) when `online` says
the download host answers; offline, `not_found_message` names every place looked and how to
get the files. Readers check everything before returning (magic numbers, lengths, counts, label
range) and raise one-line `ValueError`s naming the file: a bad file never yields part of a dataset.
"""

import gzip
import os
import pickle
import socket
import struct
import tempfile
import threading
import urllib.parse
import urllib.request
import zlib

import numpy as np

KERAS_DATASETS = ("fashion_mnist", "mnist", "cifar10")

IDX_FILES = {  # split -> (images, labels): Zalando's names (and Keras' and Debian's)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_MAGIC = {"images": (2051, 3), "labels": (2049, 1)}  # magic number, dimensions
_CIFAR_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}

# Debian's dataset-fashion-mnist installs the four files here.
SYSTEM_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}

CLASS_NAMES = {
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}

# Where keras.datasets.<name>.load_data() downloads from (the online check connects to it).
DOWNLOAD_HOSTS = {
    "fashion_mnist": "storage.googleapis.com",
    "mnist": "storage.googleapis.com",
    "cifar10": "www.cs.toronto.edu",
}
ONLINE_TIMEOUT_S = 3.0
_KERAS_CACHE_NAMES = {
    "fashion_mnist": "fashion-mnist",
    "mnist": "mnist.npz",
    "cifar10": os.path.join("cifar-10-batches-py-target", "cifar-10-batches-py"),
}


# --------------------------------------------------------------------------- where


def keras_cache_dir():
    """Keras' dataset cache, resolved as `keras.utils.get_file` does (so a download lands where we look)."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    home = os.path.expanduser(home)
    if os.path.exists(home) and not os.access(home, os.W_OK):
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(home, "datasets")


def keras_cache_path(name):
    """Where `keras.datasets.<name>.load_data()` keeps `name`'s files."""
    return os.path.join(keras_cache_dir(), _KERAS_CACHE_NAMES[name])


def tfds_default_dir():
    """TFDS's default data directory (read as `tfds.core.constants.get_default_data_dir` does)."""
    return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def _files_in(name, folder):
    """The folder holding `name`'s files under `folder` (itself or a Keras-style sub-folder), or None."""
    if name == "fashion_mnist":
        for candidate in (folder, os.path.join(folder, "fashion-mnist")):
            if all(_idx_path(candidate, f) for pair in IDX_FILES.values() for f in pair):
                return candidate
    elif name == "mnist":  # the folder holding mnist.npz, or the .npz file itself
        path = folder if folder.endswith(".npz") else os.path.join(folder, "mnist.npz")
        return path if os.path.isfile(path) else None
    else:  # cifar10: Keras 3 extracts into cifar-10-batches-py-target/, tf.keras 2 into the folder itself
        for candidate in (
            folder,
            os.path.join(folder, "cifar-10-batches-py"),
            os.path.join(folder, "cifar-10-batches-py-target", "cifar-10-batches-py"),
        ):
            if all(os.path.isfile(os.path.join(candidate, f)) for files in _CIFAR_BATCHES.values() for f in files):
                return candidate
    return None


def _idx_path(folder, gz_name):
    """`folder/name.gz`, else the unzipped `folder/name` (torchvision keeps both), else None."""
    for path in (os.path.join(folder, gz_name), os.path.join(folder, gz_name[: -len(".gz")])):
        if os.path.isfile(path):
            return path
    return None


def _tfds_prepared(name, root):
    """Whether TFDS has `name` prepared under `root` (TFDS is imported only when the folder exists)."""
    if not os.path.isdir(os.path.join(root, name)):
        return False
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=root).is_prepared()


def what_files(name):
    return {
        "fashion_mnist": "the four Fashion-MNIST files (" + ", ".join(f for p in IDX_FILES.values() for f in p) + ")",
        "mnist": "mnist.npz",
        "cifar10": "the folder cifar-10-batches-py (data_batch_1..5, test_batch)",
    }[name]


def locate(name, data_dir=None):
    """The first place holding `name`: (("files" | "tfds", path), places looked) or (None, places looked)."""
    looked = []
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
        found = _files_in(name, data_dir)
        if found:
            return ("files", found), looked
        if _tfds_prepared(name, data_dir):
            return ("tfds", data_dir), looked
        looked.append(f"data_dir {data_dir!r} (neither the files nor a prepared TFDS {name})")
    cache = keras_cache_dir()
    found = _files_in(name, cache)
    if found:
        return ("files", found), looked
    looked.append(f"Keras' cache {keras_cache_path(name)!r}")
    for folder in SYSTEM_DIRS.get(name, ()):
        found = _files_in(name, folder)
        if found:
            return ("files", found), looked
        looked.append(repr(folder))
    root = tfds_default_dir()
    if _tfds_prepared(name, root):
        return ("tfds", root), looked
    looked.append(f"TFDS's default directory {root!r} (not prepared there)")
    return None, looked


# --------------------------------------------------------------------------- online


def online(name, timeout=ONLINE_TIMEOUT_S):
    """Whether `name`'s download host (or the HTTPS proxy) accepts a connection within `timeout` seconds.

    The connection runs in a daemon thread, so a name lookup that hangs cannot hold the caller."""
    host, port = DOWNLOAD_HOSTS[name], 443
    proxy = urllib.request.getproxies().get("https")
    if proxy:
        parts = urllib.parse.urlsplit(proxy if "//" in proxy else f"http://{proxy}")
        host, port = parts.hostname or host, parts.port or 80
    answered = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answered.append(True)
        except Exception:  # noqa: BLE001 - any failure means offline
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def how_to_get(name):
    """The ways to get `name`'s files onto this machine, one sentence."""
    cache = keras_cache_path(name)
    if name == "fashion_mnist":
        return (
            "Get them with Debian's package (`sudo apt-get install dataset-fashion-mnist`, into "
            f"{SYSTEM_DIRS[name][0]}/), or copy the four files into {cache!r} "
            "(where keras.datasets.fashion_mnist.load_data() downloads them on a machine online)."
        )
    if name == "mnist":
        return (
            f"Copy mnist.npz to {cache!r} (where keras.datasets.mnist.load_data() downloads it on a machine "
            "online), or pass --data-dir / data_dir= naming a folder that holds it."
        )
    return (
        f"Copy the folder cifar-10-batches-py (from cifar-10-python.tar.gz) to {cache!r} "
        "(where keras.datasets.cifar10.load_data() extracts it on a machine online), or pass --data-dir / "
        "data_dir= naming a folder that holds it."
    )


def not_found_message(name, looked, why="this machine is offline"):
    return (
        f"{name}: none of the places looked holds {what_files(name)}: {'; '.join(looked)}; and {why}, "
        f"so Keras cannot download them. {how_to_get(name)}"
    )


def download(name, looked):
    """`name`'s arrays from Keras' own loader, which downloads into Keras' cache; checked as files are."""
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # noqa: BLE001 - any failure of the download is reported in one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(not_found_message(name, looked, f"Keras' download failed ({first})")) from None
    where = f"keras.datasets.{name}.load_data()"
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    return _checked(name, where, where, x_train, np.ravel(y_train), x_test, np.ravel(y_test))


# --------------------------------------------------------------------------- read


def read(name, path):
    """{"train": (images, labels), "test": (images, labels)} from the files at `path` (from `locate`).

    Images uint8 [N, H, W, C], labels uint8 [N]. Raises ValueError (one line naming the file) for a
    file that is not what it should be."""
    if name == "fashion_mnist":
        return _read_idx_folder(name, path)
    if name == "mnist":
        return _read_mnist_npz(path)
    return _read_cifar_folder(path)


def read_idx(path, kind):
    """One IDX file's uint8 array; `kind` ``"images"`` ([N, rows, cols]) or ``"labels"`` ([N])."""
    magic, ndim = _IDX_MAGIC[kind]
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"{path}: truncated or corrupt gzip file ({error}).") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error}).") from None
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX file.")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path}: wrong magic number {found} (0x{found:08x}); IDX {kind} files start with {magic} (0x{magic:08x})."
        )
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for the {header}-byte header of IDX {kind}.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        shape = " x ".join(str(d) for d in dims)
        raise ValueError(
            f"{path}: the header says {shape} ({size:,} bytes of data) but the file holds {len(raw) - header:,}."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _read_idx_folder(name, folder):
    splits = {}
    for split, (image_file, label_file) in IDX_FILES.items():
        image_path, label_path = _idx_path(folder, image_file), _idx_path(folder, label_file)
        images, labels = read_idx(image_path, "images"), read_idx(label_path, "labels")
        if len(images) != len(labels):
            raise ValueError(
                f"{image_path} holds {len(images):,} images but {label_path} holds {len(labels):,} labels."
            )
        splits[split] = (images[..., None], labels, image_path, label_path)
    (x_train, y_train, train_images, train_labels), (x_test, y_test, test_images, test_labels) = splits.values()
    return _checked(name, (train_images, train_labels), (test_images, test_labels), x_train, y_train, x_test, y_test)


def _read_mnist_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as error:
        raise ValueError(f"{path}: not Keras' mnist.npz (no array {error}).") from None
    except Exception as error:  # noqa: BLE001 - zip, pickle and format errors alike: a bad file
        raise ValueError(f"{path}: not a readable .npz file ({type(error).__name__}: {error}).") from None
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3:
            raise ValueError(f"{path}: {key} has shape {arrays[key].shape}, not [N, 28, 28].")
    x_train, x_test = arrays["x_train"][..., None], arrays["x_test"][..., None]
    return _checked("mnist", path, path, x_train, arrays["y_train"], x_test, arrays["y_test"])


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a tampered batch file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar_batch(path):
    try:
        with open(path, "rb") as f:
            batch = _NumpyUnpickler(f, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error}).") from None
    except Exception as error:  # noqa: BLE001 - truncated, not a pickle, not a CIFAR batch
        raise ValueError(f"{path}: not a CIFAR-10 batch file ({type(error).__name__}: {error}).") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data is {data.dtype} {data.shape}, not uint8 [N, 3072].")
    if len(labels) != len(data):
        raise ValueError(f"{path} holds {len(data):,} images but {len(labels):,} labels.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar_folder(folder):
    arrays = {}
    for split, files in _CIFAR_BATCHES.items():
        parts = [_read_cifar_batch(os.path.join(folder, f)) for f in files]
        arrays[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return _checked("cifar10", folder, folder, *arrays["train"], *arrays["test"])


def _checked(name, train_where, test_where, x_train, y_train, x_test, y_test):
    """The arrays as a split dict, once counts, shapes and labels are right; else a ValueError naming the file."""
    splits = {"train": (x_train, y_train, train_where), "test": (x_test, y_test, test_where)}
    classes = len(CLASS_NAMES[name])
    for images, labels, where in splits.values():
        image_where, label_where = where if isinstance(where, tuple) else (where, where)
        if not len(images):
            raise ValueError(f"{image_where}: holds no images.")
        if len(images) != len(labels):
            raise ValueError(f"{image_where}: {len(images):,} images but {len(labels):,} labels.")
        labels = np.asarray(labels)
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if len(bad):
            raise ValueError(
                f"{label_where}: label {int(labels[bad[0]])} at index {int(bad[0])} is outside 0..{classes - 1} "
                f"({len(bad):,} such labels)."
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        test_images = test_where[0] if isinstance(test_where, tuple) else test_where
        raise ValueError(
            f"{test_images}: test images of shape {x_test.shape[1:]}, but the train images are {x_train.shape[1:]}."
        )
    return {
        split: (np.ascontiguousarray(images, np.uint8), np.asarray(labels).astype(np.int32))
        for split, (images, labels, _) in splits.items()
    }
