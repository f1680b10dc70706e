"""`keras-regnet predict`: class and probability per image from a trained `.keras` model, no server needed.

Images are read as training read them: decoded to uint8, converted to the
model's channels, resized to its input size with the same antialiased
resize as `keras_regnet.data`, kept in [0, 255] (the models rescale
themselves). A model trained by `keras-regnet train` names its classes in
the `summary.json` beside it; otherwise classes print as indices.
"""

import json
import os

from apps.export import load_keras_model


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="a .keras file (e.g. runs/RegNetX32-digits/best.keras)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP or GIF files")
    parser.add_argument("--top", type=int, default=1, help="classes printed per image (default %(default)s)")


def class_names(model_path):
    """The class names from a run's summary.json beside the model, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "summary.json")
    try:
        with open(path, encoding="utf-8") as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError):
        return None
    return names if isinstance(names, list) else None


def read_image(path, size, channels):
    """One image file -> float32 [H, W, C] in [0, 255] at `size`, as `keras_regnet.data` prepares images."""
    import tensorflow as tf

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path!r}: no such file")
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    except tf.errors.OpError as error:
        raise ValueError(f"image {path!r} cannot be decoded: {error.message.splitlines()[0]}") from None
    image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def run(args):
    import numpy as np
    import tensorflow as tf

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    model = load_keras_model(args.model)
    _, height, width, channels = model.input_shape
    if None in (height, width) or channels not in (1, 3):
        raise ValueError(f"--model {args.model!r} has input shape {model.input_shape}: predict needs a fixed size")
    batch = tf.stack([read_image(path, (height, width), channels) for path in args.images])
    probabilities = np.asarray(model.predict(batch, verbose=0), dtype=float)
    if not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):  # logits: make probabilities
        probabilities = np.asarray(tf.nn.softmax(probabilities, axis=1))
    names = class_names(args.model)
    for path, row in zip(args.images, probabilities):
        order = np.argsort(row)[::-1][: args.top]
        text = ", ".join(f"{names[i] if names and i < len(names) else i} {row[i]:.4f}" for i in order)
        print(f"{path}: {text}")
    return 0
