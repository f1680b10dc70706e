"""`keras-regnet export`: a trained `.keras` file -> TF Serving SavedModel."""

import argparse
import os


def add_arguments(parser):
    parser.add_argument(
        "--model", required=True, metavar="FILE.keras", help="trained model saved with model.save('....keras')"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="base folder; the model goes to DIR/<version>/")
    parser.add_argument("--version", type=int, default=1, help="version subfolder, >= 1 (default: 1)")
    parser.add_argument(
        "--input-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="dtype of the images the signature takes (default: uint8 raw pixels)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty version folder")
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip reloading the export in a fresh process to compare its outputs with the model's",
    )
    parser.add_argument(
        "--fold-batch-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fold batch norms into the convolutions, the faster path measured (outputs within 1e-4); "
        "default: fold where the model has a foldable batch norm",
    )


def load_keras_model(path):
    """Load a `.keras` file with the package's custom layers registered."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--model {path!r}: no such file")
    if not os.path.isfile(path):
        raise ValueError(f"--model {path!r}: not a file")
    if not path.endswith(".keras"):
        raise ValueError(f"--model {path!r}: expected a .keras file (saved with model.save('name.keras'))")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"--model {path!r} is not a Keras zip archive: a .keras file is the zip that "
            "model.save('name.keras') writes (this one holds something else, or was cut short)"
        )
    import keras  # `import keras_regnet` registered the package's layers for this

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # corrupt zip, unknown layer, bad config...
        raise ValueError(
            f"--model {path!r}: cannot be loaded as a Keras model: {type(error).__name__}: {error}"
        ) from None


def run(args):
    from keras_regnet.backends import require_tensorflow
    from keras_regnet.export import export_saved_model

    require_tensorflow("keras-regnet export (a TF Serving SavedModel)")
    if args.version < 1:  # fail before the (slow) model load
        raise ValueError(f"--version must be >= 1, got {args.version}")
    model = load_keras_model(args.model)
    version_dir = export_saved_model(
        model,
        args.out,
        version=args.version,
        input_dtype=args.input_dtype,
        overwrite=args.overwrite,
        verify=args.verify,
        fold_batch_norm=args.fold_batch_norm,
    )
    checked = "verified in a fresh process" if args.verify else "not verified"
    print(f"exported {args.model} -> {version_dir} ({checked})")
    print(f"inspect: saved_model_cli show --dir {version_dir} --all")
    return 0
