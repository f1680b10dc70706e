"""`keras-regnet search`: a KerasTuner search over an AnyNet design space."""

from apps import flags
from keras_regnet import design_spaces, search


def add_arguments(parser):
    defaults = search.SearchConfig()
    parser.add_argument("--space", default="AnyNetX_E", help=f"one of {', '.join(design_spaces.names())}")
    parser.add_argument("--tuner", choices=search.TUNERS, help=f"default: {defaults.tuner}")
    parser.add_argument("--max-trials", type=int, help=f"default: {defaults.max_trials}")
    parser.add_argument("--flops", default=None, help="flop window LO:HI at the trained input size, e.g. 1M:20M")
    parser.add_argument("--params", default=None, help="parameter window LO:HI, e.g. 10k:2M")
    parser.add_argument(
        "--max-tries",
        type=int,
        default=None,
        help="draws outside the --flops/--params window allowed in a row before giving up (default: the space's)",
    )
    parser.add_argument(
        "--depth",
        default=None,
        help="depth range LO:HI (AnyNetX: blocks per stage, default 1:16; RegNet: total, 12:28)",
    )
    flags.add_search_arguments(parser, defaults)


def space_from_args(args):
    if args.space not in design_spaces.names():
        raise ValueError(f"unknown --space {args.space!r}; choose one of {', '.join(design_spaces.names())}")
    overrides = {}
    if args.flops:
        overrides["flops"] = flags.parse_window(args.flops, "--flops")
    if args.params:
        overrides["params"] = flags.parse_window(args.params, "--params")
    if args.depth:
        overrides["depth"] = flags.parse_int_range(args.depth, "--depth")
    if args.max_tries is not None:
        if args.max_tries < 1:
            raise ValueError(f"--max-tries must be >= 1, got {args.max_tries}")
        overrides["max_tries"] = args.max_tries
    return design_spaces.get(args.space, **overrides)


def run(args):
    settings = flags.search_settings(args)
    for field in ("tuner", "max_trials"):
        if getattr(args, field) is not None:
            settings[field] = getattr(args, field)
    config = search.SearchConfig(**settings)
    try:
        records = search.run_search(space_from_args(args), config)
    except ValueError as error:  # the sampler's words name its argument; name the flag
        message = str(error).replace("raise max_tries", "raise --max-tries").replace("(max_tries=", "(--max-tries ")
        raise ValueError(message) from None
    if config.distributed == "worker":
        return 0
    done = [r for r in records if search.val_error(r) is not None]
    print(f"{len(done)} of {len(records)} trials completed; trials.csv in {config.out}")
    if done:
        best = min(done, key=search.val_error)
        print(
            f"best: trial {best['trial_id']} val_error {search.val_error(best):.4f}; "
            f"model in {config.out}/best_model.keras"
        )
    return 0
