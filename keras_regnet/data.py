"""Datasets as `tf.data` pipelines: an embedded offline default, TFDS, image folders.

Every loader returns a `Dataset` whose splits yield `(images, labels)` batches:
images float32 `[B, H, W, C]` in `[0, 255]` (the models rescale by 1/255
themselves), labels int32 `[B]` (sparse). Each pipeline is

    raw uint8 examples -> cache (when small) -> shuffle (train) -> augment (train)
    -> batch -> resize / channel conversion / float32 -> prefetch

so the small raw data is cached once and resizing runs batched, in the pipeline.

Sources, chosen by `name`:

- ``"digits"`` (default): scikit-learn's bundled 8x8 handwritten digits (1,797
  real images, 10 classes). No network, no files: the offline default.
- ``"fashion_mnist"``, ``"mnist"``, ``"cifar10"``: the official files, read
  from the first place that has them (`keras_regnet.dataset_files.locate`:
  ``data_dir``, Keras' cache, ``/usr/share/datasets/fashion-mnist/``, TFDS's
  default directory); none has them: Keras' own download into its cache when
  the machine is online, else an immediate `FileNotFoundError` naming every
  place looked and how to get the files. The official test split is the test
  split; validation is carved from train, stratified and fixed.
- any other TFDS image-classification name, read from ``data_dir`` with
  `tfds.load`. Nothing is ever downloaded; a dataset not prepared there is an
  immediate `FileNotFoundError` saying how to prepare it.
- a folder of images in class sub-folders (``root/<class>/<image>``): name is
  ``"folder"`` with the path in ``data_dir``, or name is itself the path (an
  existing directory, or a string starting with ``/``, ``.`` or ``~``; TFDS
  names never do). Every file is decoded once before training (in the
  `tf.data` reader, in parallel): unreadable ones (truncated, not an image,
  empty) are skipped with one warning line on stderr naming each file, or
  refused with `strict_images=True` (`Dataset.skipped_files` lists them).
"""

import dataclasses
import difflib
import os
import sys

import numpy as np
import tensorflow as tf

from keras_regnet import dataset_files
from keras_regnet.validation import check_bool, check_int, is_int, is_number

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10", "folder")

# Per-dataset defaults: image side after resizing, and whether a horizontal
# flip keeps the label (never for digits or handwriting).
_DEFAULT_SIZE = {"digits": 32, "fashion_mnist": 96, "mnist": 32, "cifar10": 32, "folder": 64}
_FALLBACK_SIZE = 32
_FLIP_OK = {"fashion_mnist", "cifar10", "cifar100", "folder"}

# The split of digits and folders is fixed (independent of `seed`) so that the
# test set stays the same across training runs that differ only in seed.
_SPLIT_SEED = 0
_DEFAULT_TEST_FRACTION = 0.15
_CACHE_LIMIT_BYTES = 1 << 30  # cache raw examples in memory below 1 GiB
_SHUFFLE_BUFFER_MAX = 50_000


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: three batched `tf.data` splits and what a model needs to know."""

    name: str
    train: tf.data.Dataset = dataclasses.field(repr=False)
    validation: tf.data.Dataset = dataclasses.field(repr=False)
    test: tf.data.Dataset = dataclasses.field(repr=False)
    num_classes: int
    input_shape: tuple
    class_names: list
    num_examples: dict
    steps_per_epoch: int
    skipped_files: tuple = ()  # unreadable images left out of an image folder (paths relative to it)
    source: str = ""  # where the examples were read from: a folder, a TFDS directory, scikit-learn, a download


def available_datasets():
    """Names `load` accepts besides any TFDS image-classification name or a folder path."""
    return DATASETS


def load(
    name="digits",
    *,
    image_size=None,
    batch_size=128,
    data_dir=None,
    augment=False,
    validation_fraction=0.1,
    test_fraction=None,
    seed=0,
    channels=None,
    strict_images=False,
    train_examples=None,
):
    """Load a dataset as batched `tf.data` train/validation/test pipelines.

    Args:
        name: ``"digits"``, a TFDS image-classification name, ``"folder"`` (path in
            `data_dir`) or a folder path (see the module docstring for the rule).
        image_size: side (int) or `(height, width)` after resizing; None is the
            per-dataset default (digits 32, fashion_mnist 96 as in d2l, mnist 32,
            cifar10 32, folder 64, other TFDS 32). At least 8.
        batch_size: examples per batch, at least 1.
        data_dir: TFDS data directory (None: TFDS's default, `TFDS_DATA_DIR` or
            ``~/tensorflow_datasets``), or the image folder for ``name="folder"``.
            For fashion_mnist, mnist and cifar10 the first place looked: a folder
            with the files or a prepared TFDS directory (then Keras' cache, ...).
            Not used by digits.
        augment: light augmentation of the train split only: a random translation
            of up to 1/8 of the side, plus a horizontal flip where the label
            survives it (fashion_mnist, cifar10/100, folders; never digits/mnist).
        validation_fraction: share carved for validation where the source has no
            validation split, in (0, 0.5). Official validation splits are used as is.
        test_fraction: share carved for test where the source has no test split,
            in (0, 0.5); None means 0.15. Must stay None for a dataset that has
            an official test split. Digits default to 75/10/15 train/val/test.
        seed: seeds the per-epoch train shuffle and the augmentation. Splits of
            digits, folders and the official files are stratified and fixed,
            independent of `seed`; TFDS splits are carved deterministically from
            the end of ``train``.
        channels: None keeps the source's channels (1 for digits/mnist/
            fashion_mnist, 3 for cifar10 and folders); 1 or 3 converts.
        strict_images: an image folder's unreadable files (every file is
            decoded once before training) are refused (True: ValueError
            naming them) or skipped with one warning line on stderr naming
            each (False, the default).
        train_examples: None (all) or an int >= 10: the train split keeps only
            this many images of what would otherwise be the train split, chosen
            stratified by class and fixed (independent of `seed`; a smaller
            count's images are among a larger one's), and every other image of
            it moves into the validation split. Why: the design-space study's
            recipe trains on a few thousand images and scores all the rest.
            Digits, fashion_mnist / mnist / cifar10 files and folders; not TFDS.
            At most the would-be train split's size, and at least one image per
            class.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: a bad argument, an unknown or non-image-classification name,
            an empty / unreadable image folder, or a bad dataset file (the message
            names the path and what is wrong).
        FileNotFoundError: a TFDS dataset not prepared in `data_dir` (raised before
            any download is attempted; the message says how to prepare it), or
            fashion_mnist / mnist / cifar10 found nowhere and not downloadable.
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name):
        raise ValueError(f"`name` must be a dataset name or a folder path; received {name!r}.")
    name = os.fspath(name)
    size = _check_image_size(image_size)
    check_int("`batch_size`", batch_size, 1)
    check_int("`seed`", seed, 0)
    _check_fraction("validation_fraction", validation_fraction)
    if test_fraction is not None:
        _check_fraction("test_fraction", test_fraction)
    if channels not in (None, 1, 3):
        raise ValueError(f"`channels` must be None, 1 or 3; received {channels!r}.")
    check_bool("`augment`", augment)
    check_bool("`strict_images`", strict_images)
    if train_examples is not None:
        train_examples = check_int("`train_examples`", train_examples, 10)
    subset = dict(train_examples=train_examples)

    if name == "folder" or _looks_like_path(name):
        if name == "folder":
            if data_dir is None:
                raise ValueError('name="folder" needs `data_dir`: the folder of class sub-folders.')
            path = data_dir
        else:
            path = name
        folder_size = size or (_DEFAULT_SIZE["folder"],) * 2
        kind, source = (
            "folder",
            _folder_source(
                path, folder_size, channels or 3, validation_fraction, test_fraction, strict_images, **subset
            ),
        )
    elif name == "digits":
        kind, source = "digits", _digits_source(validation_fraction, test_fraction, **subset)
    elif name in dataset_files.KERAS_DATASETS:
        kind, source = name, _keras_files_source(name, data_dir, validation_fraction, test_fraction, **subset)
    else:
        kind, source = name, _tfds_source(name, data_dir, validation_fraction, test_fraction, **subset)

    default = _DEFAULT_SIZE.get(kind, _FALLBACK_SIZE)
    height, width = size or (default, default)
    out_channels = channels or source["channels"]
    build = dict(size=(height, width), channels=out_channels, batch_size=batch_size, seed=seed)
    splits = {}
    for split in ("train", "validation", "test"):
        training = split == "train"
        splits[split] = _pipeline(
            source["splits"][split],
            source["num_examples"][split],
            shuffle=training,
            augment=augment and training,
            flip=kind in _FLIP_OK,
            **build,
        )
    return Dataset(
        name=name,
        train=splits["train"],
        validation=splits["validation"],
        test=splits["test"],
        num_classes=len(source["class_names"]),
        input_shape=(height, width, out_channels),
        class_names=list(source["class_names"]),
        num_examples=dict(source["num_examples"]),
        steps_per_epoch=train_steps(source["num_examples"]["train"], batch_size),
        skipped_files=tuple(source.get("skipped", ())),
        source=source.get("where", ""),
    )


def train_steps(n, batch_size):
    """Batches in one epoch of the train split: full batches only (the partial one is dropped)."""
    return max(1, n // batch_size) if n >= batch_size else 1


# --------------------------------------------------------------------------- checks


def _check_fraction(arg, value):
    if not is_number(value) or not 0 < value < 0.5:
        raise ValueError(f"`{arg}` must be a number in the open range (0, 0.5); received {value!r}.")


def _check_image_size(image_size):
    """None, an int side or an (height, width) pair, each side an integer >= 8."""
    if image_size is None:
        return None
    sides = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    ok = len(sides) == 2 and all(is_int(s) and s >= 8 for s in sides)
    if not ok:
        raise ValueError(
            "`image_size` must be None, an integer >= 8 or a (height, width) pair of "
            f"integers >= 8; received {image_size!r}."
        )
    return int(sides[0]), int(sides[1])


def _looks_like_path(name):
    return name.startswith(("/", ".", "~")) or os.path.isdir(name)


# --------------------------------------------------------------------------- splits


def _stratified_split(labels, validation_fraction, test_fraction, what, class_names):
    """Per-class train/validation/test index arrays, fixed by `_SPLIT_SEED`.

    Splitting each class separately puts every class in every split; each class
    gives at least one example to each split, so it needs at least three (two
    with `test_fraction` 0: a source whose official test split is kept).
    """
    rng = np.random.default_rng(_SPLIT_SEED)
    parts = ([], [], [])
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = max(1, round(validation_fraction * len(idx)))
        n_test = max(1, round(test_fraction * len(idx))) if test_fraction else 0
        if len(idx) - n_val - n_test < 1:
            need = "3 (one each for train, validation and test)" if test_fraction else "2 (train and validation)"
            raise ValueError(
                f"{what}: class {class_names[label]!r} has only {len(idx)} example(s); "
                f"every class needs at least {need}."
            )
        parts[0].append(idx[n_val + n_test :])
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
    return [np.sort(np.concatenate(p)) for p in parts]


def _train_subset(labels, train_idx, validation_idx, train_examples, what):
    """(train, validation) index arrays: `train_examples` of `train_idx` kept, the rest moved to validation.

    Stratified (each class keeps its share of `train_idx`, by largest
    remainder, at least one image) and fixed by `_SPLIT_SEED`, never by the
    training seed; each class's images are taken in one fixed order, so a
    smaller subset is part of a larger one. None keeps the splits as they are.
    """
    if train_examples is None:
        return train_idx, validation_idx
    if train_examples > len(train_idx):
        raise ValueError(
            f"`train_examples` must be at most {len(train_idx)}, the images in the train split of {what} "
            f"(before `train_examples`); received {train_examples}."
        )
    classes, counts = np.unique(labels[train_idx], return_counts=True)
    if train_examples < len(classes):
        raise ValueError(
            f"`train_examples` must be at least {len(classes)}, one image per class of {what}; "
            f"received {train_examples}."
        )
    quota = train_examples * counts / counts.sum()
    take = np.minimum(np.maximum(1, np.floor(quota).astype(int)), counts)
    while take.sum() < train_examples:  # largest remainder first, among classes with images left
        take[np.argmax(np.where(take < counts, quota - take, -np.inf))] += 1
    while take.sum() > train_examples:  # the one-image minimum overshot: trim the most over quota
        take[np.argmax(np.where(take > 1, take - quota, -np.inf))] -= 1
    rng = np.random.default_rng(_SPLIT_SEED)
    kept, moved = [], [validation_idx]
    for label, n in zip(classes, take):
        idx = rng.permutation(train_idx[labels[train_idx] == label])
        kept.append(idx[:n])
        moved.append(idx[n:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(moved))


def _array_source(images, labels, class_names, channels, validation_fraction, test_fraction, what, train_examples):
    split_idx = _stratified_split(
        labels, validation_fraction, test_fraction or _DEFAULT_TEST_FRACTION, what, class_names
    )
    split_idx[0], split_idx[1] = _train_subset(labels, split_idx[0], split_idx[1], train_examples, what)
    names = ("train", "validation", "test")
    return dict(
        class_names=class_names,
        channels=channels,
        splits={
            n: tf.data.Dataset.from_tensor_slices((images[i], labels[i].astype(np.int32)))
            for n, i in zip(names, split_idx)
        },
        num_examples={n: len(i) for n, i in zip(names, split_idx)},
    )


# --------------------------------------------------------------------------- sources
# A source is a dict: splits (unbatched raw (uint8 image, int label) datasets),
# num_examples, class_names, channels (native).


def _digits_source(validation_fraction, test_fraction, train_examples=None):
    """scikit-learn's bundled digits; pixel values 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    classes = [str(c) for c in range(10)]
    source = _array_source(
        images, digits.target, classes, 1, validation_fraction, test_fraction, "digits", train_examples
    )
    return dict(source, where="scikit-learn's load_digits")


def _keras_files_source(name, data_dir, validation_fraction, test_fraction, train_examples=None):
    """fashion_mnist / mnist / cifar10 from the first place holding them (`dataset_files.locate`).

    The official test split is the test split; validation is carved from train,
    stratified and fixed. Files are read and checked whole before any split is
    built, so a bad file is one error and never part of a dataset."""
    if test_fraction is not None:
        raise ValueError(f"`test_fraction` must be None for {name!r}: its official test split is used as is.")
    found, looked = dataset_files.locate(name, data_dir)
    if found and found[0] == "tfds":
        return _tfds_source(name, found[1], validation_fraction, None, train_examples)
    if found:
        arrays, where = dataset_files.read(name, found[1]), found[1]
    elif dataset_files.online(name):
        arrays, where = dataset_files.download(name, looked), f"keras.datasets.{name} (downloaded)"
    else:
        raise FileNotFoundError(dataset_files.not_found_message(name, looked))
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    class_names = dataset_files.CLASS_NAMES[name]
    train_idx, val_idx, _ = _stratified_split(y_train, validation_fraction, 0, f"{name} ({where})", class_names)
    train_idx, val_idx = _train_subset(y_train, train_idx, val_idx, train_examples, name)
    parts = {"train": (x_train[train_idx], y_train[train_idx]), "validation": (x_train[val_idx], y_train[val_idx])}
    parts["test"] = (x_test, y_test)
    return dict(
        class_names=class_names,
        channels=x_train.shape[-1],
        splits={split: tf.data.Dataset.from_tensor_slices(part) for split, part in parts.items()},
        num_examples={split: len(part[1]) for split, part in parts.items()},
        where=where,
    )


def unreadable_images(files, channels=3):
    """Indices of the image files TensorFlow cannot read and decode: each file
    is decoded once in a parallel `tf.data` map whose errors are dropped."""

    def check(index, file):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
        return index, tf.shape(image)  # the shape needs the decode: it is not pruned

    indices = np.arange(len(files), dtype=np.int64)
    checked = (
        tf.data.Dataset.from_tensor_slices((indices, np.asarray(files, dtype=object).astype(str)))
        .map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
    )
    good = np.zeros(len(files), dtype=bool)
    for index, _ in checked.as_numpy_iterator():
        good[index] = True
    return np.flatnonzero(~good)


def _folder_source(path, size, channels, validation_fraction, test_fraction, strict_images=False, train_examples=None):
    """Images in `path/<class>/`, listed by Keras; decoded and resized once, then cached."""
    import keras

    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path) or not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"Image folder {path!r} does not exist or is not a readable directory.")
    try:
        listing = keras.utils.image_dataset_from_directory(
            path, labels="inferred", label_mode="int", batch_size=None, shuffle=False, image_size=size, verbose=False
        )
    except ValueError as error:  # "No images found in directory ..."
        raise ValueError(
            f"Image folder {path!r} has no images in class sub-folders "
            f"(expected {path}/<class>/<image>.png|jpg|...): {error}"
        ) from None
    class_names = list(listing.class_names)
    if len(class_names) < 2:
        raise ValueError(f"Image folder {path!r} needs at least 2 class sub-folders; found {class_names}.")
    files = np.array(listing.file_paths)
    labels = np.array([class_names.index(os.path.relpath(f, path).split(os.sep)[0]) for f in files])
    bad = unreadable_images(files, channels)
    skipped = [os.path.relpath(f, path) for f in files[bad]]
    if skipped:
        what = f"{len(skipped)} of {len(files)} image files in {path!r} cannot be read as images: {', '.join(skipped)}"
        if strict_images:
            raise ValueError(f"{what} (refused: --strict-images / strict_images=True; without it they are skipped).")
        print(f"warning: skipping {what}", file=sys.stderr, flush=True)
        keep = np.ones(len(files), dtype=bool)
        keep[bad] = False
        files, labels = files[keep], labels[keep]
        if not len(files):
            raise ValueError(f"Image folder {path!r} has no readable images.")
    split_idx = _stratified_split(
        labels, validation_fraction, test_fraction or _DEFAULT_TEST_FRACTION, f"Image folder {path!r}", class_names
    )
    split_idx[0], split_idx[1] = _train_subset(
        labels, split_idx[0], split_idx[1], train_examples, f"image folder {path!r}"
    )

    def decode(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
        image = tf.image.resize(image, size, antialias=True)
        image = tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)
        return tf.ensure_shape(image, (*size, channels)), label

    names = ("train", "validation", "test")
    splits = {
        n: tf.data.Dataset.from_tensor_slices((files[i], labels[i].astype(np.int32))).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        for n, i in zip(names, split_idx)
    }
    return dict(
        class_names=class_names,
        channels=channels,
        splits=splits,
        num_examples={n: len(i) for n, i in zip(names, split_idx)},
        skipped=skipped,
        where=path,
    )


def _tfds_source(name, data_dir, validation_fraction, test_fraction, train_examples=None):
    """A prepared TFDS image-classification dataset; never downloads."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        # with_community_datasets=False: the community index would be fetched over the network.
        known = dict.fromkeys([*DATASETS, *tfds.list_builders(with_community_datasets=False)])
        close = difflib.get_close_matches(name, list(known), n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}. Built-in choices: {', '.join(DATASETS)}; "
            f"or any TFDS image-classification name (tfds.list_builders()), "
            f"or a folder path.{hint}"
        ) from None
    info = builder.info
    keys = info.supervised_keys
    if (
        not keys
        or len(keys) != 2
        or not isinstance(info.features[keys[0]], tfds.features.Image)
        or not isinstance(info.features[keys[1]], tfds.features.ClassLabel)
    ):
        raise ValueError(
            f"TFDS dataset {name!r} is not an image-classification dataset "
            f"(supervised keys {keys!r}); keras_regnet.data needs (image, label)."
        )
    if train_examples is not None:
        raise ValueError(
            f"`train_examples` is not supported for TFDS datasets ({name!r}, read with tfds.load, got "
            f"{train_examples}): it needs the labels before the splits are built. Use digits, the "
            "fashion_mnist / mnist / cifar10 files or an image folder, or leave it None."
        )
    if not builder.is_prepared():
        root = data_dir or getattr(builder, "_data_dir_root", None) or "~/tensorflow_datasets"
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in data_dir {os.fspath(root)!r} (looked for "
            f"{os.fspath(builder.data_dir)!r}); keras-regnet never downloads. On a machine with "
            f"network access run `tfds build {name} --data_dir DIR` (or "
            f"`tfds.load({name!r}, data_dir=DIR)`), then copy DIR/{name.split('/')[0]} into "
            f"{os.fspath(root)!r}, or pass --data-dir / data_dir= pointing at a prepared copy. "
            "name='digits' needs no download."
        )

    available = info.splits
    if "train" not in available:
        raise ValueError(f"TFDS dataset {name!r} has no 'train' split ({list(available)}).")
    n = available["train"].num_examples
    n_val = 0 if "validation" in available else max(1, round(validation_fraction * n))
    if "test" in available:
        if test_fraction is not None:
            raise ValueError(f"`test_fraction` must be None for {name!r}: its official 'test' split is used as is.")
        n_test = 0
    else:
        n_test = max(1, round((test_fraction or _DEFAULT_TEST_FRACTION) * n))
    cut_val, cut_test = n - n_val - n_test, n - n_test
    split_names = {
        "train": f"train[:{cut_val}]",
        "validation": "validation" if "validation" in available else f"train[{cut_val}:{cut_test}]",
        "test": "test" if "test" in available else f"train[{cut_test}:]",
    }
    num_examples = {
        "train": cut_val,
        "validation": available["validation"].num_examples if n_val == 0 else n_val,
        "test": available["test"].num_examples if n_test == 0 else n_test,
    }
    loaded = tfds.load(
        name,
        split=list(split_names.values()),
        data_dir=data_dir,
        as_supervised=True,
        download=False,
        shuffle_files=False,
    )
    image_shape = info.features[keys[0]].shape
    return dict(
        class_names=list(info.features[keys[1]].names),
        channels=image_shape[-1] or 3,
        splits=dict(zip(split_names, loaded)),
        num_examples=num_examples,
        where=f"TFDS {os.fspath(data_dir or getattr(builder, '_data_dir_root', None) or '')}".strip(),
    )


# --------------------------------------------------------------------------- pipeline


def _pipeline(ds, n, *, size, channels, batch_size, seed, shuffle, augment, flip):
    """Raw (uint8 image, label) examples -> batched float32 images at `size`, int32 labels."""
    image_spec = ds.element_spec[0]
    fixed = image_spec.shape.is_fully_defined()
    if fixed and n * image_spec.shape.num_elements() * image_spec.dtype.size <= _CACHE_LIMIT_BYTES:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(n, _SHUFFLE_BUFFER_MAX), seed=seed, reshuffle_each_iteration=True)
    if augment:
        # One stateless seed pair per example; rerandomized each epoch, reproducible by `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda example, pair: _augment(*example, pair, flip), num_parallel_calls=tf.data.AUTOTUNE
        )

    def finish(images, labels):
        images = tf.cast(images, tf.float32)
        if images.shape[-1] == 1 and channels == 3:
            images = tf.image.grayscale_to_rgb(images)
        elif images.shape[-1] == 3 and channels == 1:
            images = tf.image.rgb_to_grayscale(images)
        images = tf.clip_by_value(tf.image.resize(images, size, antialias=True), 0.0, 255.0)
        return images, tf.cast(labels, tf.int32)

    # The train split drops its last, partial batch (as pycls and PyTorch's drop_last): batch norm
    # over a handful of images (3 of digits' 899 at batch 32; at the 1x1 maps of a 4-stage net on
    # 32x32, 3 values per channel) gives statistics so far off that one such step per epoch wrecked
    # networks that were training well (bench/README.md, "Study recipe").
    drop = shuffle and n >= batch_size
    # Resize whole batches when every raw image has the same shape; else resize first.
    if fixed:
        ds = ds.batch(batch_size, drop_remainder=drop).map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=drop)
    return ds.prefetch(tf.data.AUTOTUNE)


def _augment(image, label, pair, flip):
    """Random translation (zero pad 1/8 of the side, random crop) and optional flip."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(pair, 2))
    shape = tf.shape(image)
    pad = tf.maximum(1, tf.minimum(shape[0], shape[1]) // 8)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    static_shape = image.shape
    image = tf.image.stateless_random_crop(padded, shape, seed=crop_seed)
    image.set_shape(static_shape)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image, label
