"""The `keras-regnet` command: one entry point, one module per subcommand.

Each subcommand lives in `apps/<name>.py` and provides `add_arguments(parser)`
and `run(args) -> int`. Errors a user can fix (bad flags, missing files) are
raised as `ValueError`/`TypeError`/`FileNotFoundError` and printed here as one
line, without a traceback.
"""

import argparse
import importlib
import os
import sys

SUBCOMMANDS = {
    "summary": "layer-by-layer shapes and complexity of a model",
    "train": "train a model (default: RegNetX32 on the embedded digits data)",
    "search": "KerasTuner search over a design space",
    "study": "compare design spaces by their error EDFs",
    "predict": "class and probability per image from a trained .keras model",
    "export": "export a trained .keras model as a TF Serving SavedModel",
    "serve": "serve an exported SavedModel over the TF Serving REST API",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-regnet",
        description="AnyNet / RegNet design spaces for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, help_text in SUBCOMMANDS.items():
        module = importlib.import_module(f"apps.{name}")
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_module=module, _name=name)
    return parser


def main(argv=None):
    from keras_regnet import startup

    parser = build_parser()
    args = parser.parse_args(argv)
    # After --help / usage errors, which need no TensorFlow. Under another Keras backend TensorFlow is
    # not imported here: importing it first would load Keras on TensorFlow before --backend applies.
    backend = getattr(args, "backend", None) or os.environ.get("KERAS_BACKEND")
    if backend in (None, "", "tensorflow"):
        startup.quiet_tensorflow(args._name)  # oneDNN as measured best for this job (keras_regnet.startup)
    else:
        startup.prepare(args._name)
    try:
        return int(args._module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as error:
        print(f"keras-regnet {args._name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"keras-regnet {args._name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
