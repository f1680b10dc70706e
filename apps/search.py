"""`keras-regnet search`: a KerasTuner search over an AnyNet design space."""

from keras_regnet import design_spaces
from keras_regnet import records as records_lib


def add_arguments(parser):
    parser.add_argument("--space", default="AnyNetX_E", help=f"one of {', '.join(design_spaces.names())}")
    parser.add_argument("--tuner", default="random", choices=("random", "hyperband", "bayesian"))
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (Hyperband: the maximum)")
    parser.add_argument("--flops", default=None, help="flop window LO:HI at the trained input size, e.g. 1M:20M")
    parser.add_argument("--params", default=None, help="parameter window LO:HI, e.g. 10k:2M")
    parser.add_argument("--depth", default=None,
                        help="depth range LO:HI (AnyNetX: blocks per stage, default 1:16; RegNet: total, 12:28)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the training recipe's)")
    parser.add_argument("--out", default="runs/search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="trials trained at once, each in its own process (default: one per CPU core)")
    parser.add_argument("--distributed", choices=("chief", "worker"), default=None,
                        help="KerasTuner chief/worker mode (one chief serves the oracle, workers train)")
    parser.add_argument("--oracle-host", default="127.0.0.1")
    parser.add_argument("--oracle-port", type=int, default=8000)
    parser.add_argument("--worker-id", default=None, help="worker name (default: the process id)")


def parse_int_range(text, name):
    """'1:4' -> (1, 4)."""
    try:
        lo, hi = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"{name} must look like LO:HI with integers, e.g. 1:4, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} needs 1 <= LO <= HI, got {text!r}")
    return (lo, hi)


def space_from_args(args):
    from keras_regnet.tuning import parse_window

    if args.space not in design_spaces.names():
        raise ValueError(f"unknown --space {args.space!r}; choose one of {', '.join(design_spaces.names())}")
    overrides = {}
    if args.flops:
        overrides["flops"] = parse_window(args.flops, "--flops")
    if args.params:
        overrides["params"] = parse_window(args.params, "--params")
    if args.depth:
        overrides["depth"] = parse_int_range(args.depth, "--depth")
    return design_spaces.get(args.space, **overrides)


def train_config_from_args(args, epochs):
    from keras_regnet import training

    kwargs = dict(epochs=epochs, batch_size=args.batch_size, verbose=0, seed=args.seed)
    if args.lr is not None:
        kwargs["lr"] = args.lr
    return training.TrainConfig(**kwargs)


def run(args):
    from keras_regnet import tuning

    space = space_from_args(args)
    records = tuning.run_search(
        space=space, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
        dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
        batch_size=args.batch_size, out=args.out, seed=args.seed,
        train_config=train_config_from_args(args, args.epochs), distributed=args.distributed,
        oracle_host=args.oracle_host, oracle_port=args.oracle_port, worker_id=args.worker_id,
        workers=args.workers)
    if args.distributed == "worker":
        return 0
    done = [r for r in records if records_lib.val_error(r) is not None]
    print(f"{len(done)} of {len(records)} trials completed; trials.csv in {args.out}")
    if done:
        best = min(done, key=records_lib.val_error)
        print(f"best: trial {best['trial_id']} val_error {records_lib.val_error(best):.4f}; model in {args.out}/best_model.keras")
    return 0
