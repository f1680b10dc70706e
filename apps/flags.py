"""Flag parsing shared by the subcommands: windows ('1M:20M'), integer ranges ('1:4'), search flags.

The library takes numbers and tuples; turning a command line's text into them
happens here, once. Flags left out stay None, so the defaults of the library's
config (`SearchConfig`, `STUDY_CONFIG`) apply and are written in one place.
"""

_UNITS = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_window(text, name="--flops"):
    """'1M:20M' -> (1e6, 2e7); suffixes k, M, G; an empty side means open ('500k:' -> (5e5, None))."""
    if text is None:
        return None

    def number(part):
        part = part.strip()
        if not part:
            return None
        scale = _UNITS.get(part[-1], 1)
        try:
            return float(part[:-1] if part[-1] in _UNITS else part) * scale
        except ValueError:
            raise ValueError(f"{name} must look like 1M:20M (suffixes k, M, G), got {text!r}") from None

    if ":" not in text:
        raise ValueError(f"{name} must look like LO:HI, e.g. 1M:20M, got {text!r}")
    lo, hi = (number(p) for p in text.split(":", 1))
    lo = 0.0 if lo is None else lo
    if lo < 0 or (hi is not None and hi <= lo):
        raise ValueError(f"{name} window {text!r} is empty: it needs 0 <= LO < HI")
    return (lo, hi)


def parse_int_range(text, name):
    """'1:4' -> (1, 4), with 1 <= LO <= HI."""
    try:
        lo, hi = (int(part) for part in text.split(":"))
    except ValueError:
        raise ValueError(f"{name} must look like LO:HI with integers, e.g. 1:4, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} needs 1 <= LO <= HI, got {text!r}")
    return (lo, hi)


# SearchConfig fields set by flags of the same name (--max-trials -> max_trials).
_SEARCH_FIELDS = (
    "epochs",
    "dataset",
    "data_dir",
    "image_size",
    "train_examples",
    "batch_size",
    "lr",
    "seed",
    "out",
    "workers",
    "distributed",
    "oracle_host",
    "oracle_port",
    "worker_id",
)


def add_search_arguments(parser, defaults, *, port_help=""):
    """The flags that `keras-regnet search` and `study` share; help shows `defaults` (a SearchConfig)."""
    parser.add_argument("--epochs", type=int, help=f"epochs per network (default: {defaults.epochs})")
    parser.add_argument(
        "--dataset", help=f"digits (embedded), a prepared TFDS name or an image folder (default: {defaults.dataset})"
    )
    parser.add_argument("--data-dir", help="TFDS data directory or image folder")
    parser.add_argument(
        "--image-size", type=int, help=f"input side (default: {defaults.image_size or 'the dataset default'})"
    )
    parser.add_argument(
        "--train-examples",
        type=int,
        metavar="N",
        help="train on a fixed stratified subset of N images (>= 10) of the train split; the rest of it is "
        f"validated (scored) too (default: {defaults.train_examples or 'all'}; not for TFDS datasets)",
    )
    parser.add_argument("--batch-size", type=int, help=f"default: {defaults.batch_size}")
    parser.add_argument(
        "--lr", type=float, help=f"peak learning rate (default: {defaults.lr or 'the training recipe'})"
    )
    parser.add_argument("--out", help=f"output folder; rerun the same to resume (default: {defaults.out})")
    parser.add_argument("--seed", type=int, help=f"default: {defaults.seed}")
    parser.add_argument(
        "--workers", type=int, help="trials trained at once, each in its own process (default: one per CPU core)"
    )
    parser.add_argument(
        "--distributed",
        choices=("chief", "worker"),
        help="KerasTuner chief/worker mode (one chief serves the oracle, workers train)" + port_help,
    )
    parser.add_argument("--oracle-host", help=f"default: {defaults.oracle_host}")
    parser.add_argument("--oracle-port", type=int, help=f"default: {defaults.oracle_port}")
    parser.add_argument("--worker-id", help="worker name (default: the process id)")


def search_settings(args):
    """{SearchConfig field: value} for the shared flags that were given."""
    return {field: getattr(args, field) for field in _SEARCH_FIELDS if getattr(args, field) is not None}
