"""`keras-regnet train`: train a model (default: RegNetX32 on the embedded digits data)."""

import argparse
import sys

from keras_regnet import zoo

# The defaults live in one place: keras_regnet.training.TrainConfig. argparse
# defaults are None ("not given") so that the config's defaults apply.


def add_arguments(parser):
    parser.add_argument(
        "--model",
        default=None,
        help=f"a zoo model ({', '.join(zoo.names())}) or a spec .json file (default: RegNetX32)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="digits (embedded, default); fashion_mnist, mnist, cifar10 (the official files: --data-dir, Keras' "
        "cache, /usr/share/datasets, TFDS's default folder, else Keras' download); another prepared TFDS name; "
        "'folder' or an image folder path",
    )
    parser.add_argument(
        "--data-dir", default=None, help="a folder with the dataset's files, a TFDS data directory or an image folder"
    )
    parser.add_argument(
        "--recipe",
        default=None,
        choices=("default", "d2l"),
        help="training recipe (default: default, the package's); d2l: d2l's run exactly (RegNetX32, 96x96, "
        "batch 128, SGD without momentum at constant lr 0.05, 10 epochs, no warm-up, augmentation, weight "
        "decay or label smoothing). Flags given beside it override its values",
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="input side (default: the dataset's, 32 for digits)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 30)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (default: 128)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate after warm-up (default: 0.1)")
    parser.add_argument("--momentum", type=float, default=None, help="SGD momentum (default: 0.9)")
    parser.add_argument("--weight-decay", type=float, default=None, help="decoupled weight decay (default: 5e-5)")
    parser.add_argument(
        "--warmup-epochs", type=float, default=None, help="linear warm-up epochs, at most half the run (default: 1)"
    )
    parser.add_argument(
        "--schedule",
        default=None,
        choices=("cosine", "constant"),
        help="learning-rate schedule after warm-up (default: cosine)",
    )
    parser.add_argument("--label-smoothing", type=float, default=None, help="in [0, 1) (default: 0)")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random translation (+ flips where labels allow) of the train split (default: on)",
    )
    parser.add_argument(
        "--mixed-precision",
        default=None,
        choices=("off", "bf16", "fp16"),
        help="Keras mixed-precision policy (default: off; bf16 for CPUs with AVX512-BF16/AMX, fp16 for GPUs)",
    )
    parser.add_argument(
        "--strategy",
        default=None,
        choices=("auto", "mirrored", "multiworker"),
        help="tf.distribute strategy (default: auto; multiworker reads TF_CONFIG)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    parser.add_argument(
        "--backend",
        default=None,
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow); jax and torch need "
        "pip install 'keras-regnet[jax]' or '[torch]'",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: runs/<model>-<dataset>); re-running with the same folder resumes a killed run",
    )
    parser.add_argument(
        "--strict-images",
        action="store_true",
        default=None,
        help="an image folder's unreadable files stop the run (default: skipped, with a warning naming each)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="retrain a run that --out holds finished (default: say it is complete and stop)",
    )
    parser.add_argument(
        "--test-each-epoch",
        action="store_true",
        default=None,
        help="score the test split after every epoch too (history.csv's test_accuracy; on in --recipe d2l)",
    )
    parser.add_argument(
        "--init",
        default=None,
        choices=("default", "d2l"),
        help="weight init: default (pycls: He normal, residual branches' last gamma 0) or d2l "
        "(Xavier uniform, gamma 1; on in --recipe d2l)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


_FIELDS = (
    "model",
    "dataset",
    "data_dir",
    "image_size",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "schedule",
    "label_smoothing",
    "augment",
    "mixed_precision",
    "strategy",
    "seed",
    "out",
    "strict_images",
    "overwrite",
    "test_each_epoch",
    "init",
    "recipe",
)


def config_from_args(args):
    from keras_regnet.training import TrainConfig

    kwargs = {field: getattr(args, field) for field in _FIELDS if getattr(args, field) is not None}
    if args.quiet:
        kwargs["verbose"] = 0
    elif not sys.stdout.isatty():  # a log file: one line per epoch, no progress-bar redraws
        kwargs["verbose"] = 2
    recipe = kwargs.pop("recipe", "default")
    try:
        return TrainConfig.from_recipe(recipe, **kwargs)
    except (ValueError, TypeError) as error:  # name the flag the user typed, not the field
        message = str(error)
        for field in _FIELDS:
            message = message.replace(f"TrainConfig.{field}", "--" + field.replace("_", "-"))
        raise type(error)(message) from None


def run(args):
    config = config_from_args(args)
    if args.backend:
        from keras_regnet import backends

        backends.select(args.backend)  # before Keras loads
    from keras_regnet import training

    summary = training.train(config)
    accuracy = summary["accuracy"]
    best = accuracy["best_validation"]
    where = (
        config.out if summary["task"]["chief"] else f"{config.out}/{summary['task']['type']}-{summary['task']['id']}"
    )
    print(
        f"{summary['model']} on {summary['dataset']} {tuple(summary['input_shape'])}: "
        f"{summary['epochs']} epochs in {summary['wall_time_s']:.1f} s "
        f"({summary['images_per_second'] or 0:.0f} img/s)"
        + (f"; best val accuracy {best:.4f}" if best is not None else "")
    )
    print(f"model: {where}/model.keras  summary: {where}/summary.json")
    print(f"test accuracy: {accuracy['test']:.4f}")
    return 0
