"""`keras-regnet study`: compare design spaces by the error EDFs of random samples (the paper's study)."""

from apps import flags
from keras_regnet import report, study


def add_arguments(parser):
    parser.add_argument(
        "--spaces",
        default=",".join(study.SPACES),
        help="comma-separated design spaces, compared in the paper's pairs (default: all six)",
    )
    parser.add_argument("--samples", type=int, default=study.SAMPLES, help="networks sampled per space (>= 2)")
    parser.add_argument(
        "--flops",
        default=report.window_text(study.FLOPS),
        help="flop window LO:HI at the trained input size (default: %(default)s)",
    )
    parser.add_argument(
        "--proxy-check",
        type=int,
        default=study.PROXY_CHECK,
        metavar="K",
        help=f"retrain K sampled models for {study.PROXY_FACTOR}x the epochs with two seeds and report the "
        "Spearman rank correlation of short and long errors, the seed Spearman at both schedules, the "
        "attenuation-corrected correlation and which case the run is in: (a) short training ranks networks "
        "as long training does; (b) long training does not separate networks on this data, so verdicts are "
        "about short training; (c) a biased proxy, verdicts unreliable (0: off; default %(default)s)",
    )
    parser.add_argument(
        "--seed-check",
        type=int,
        default=study.SEED_CHECK,
        metavar="K",
        help="retrain K sampled models with a second seed and report the seed-to-seed Spearman and the "
        "seed SD against the between-network SD (0: off; default %(default)s)",
    )
    parser.add_argument(
        "--confirm",
        type=int,
        default=study.CONFIRM,
        metavar="K",
        help=f"retest the headline comparison ({study.HEADLINE[0]} vs {study.HEADLINE[1]}) at "
        f"{study.PROXY_FACTOR}x the epochs: retrain K networks of each space (the proxy check's trainings "
        "reused) and report KS and effect sizes at both schedules: holds, reverses or not resolved "
        "(0: off; default %(default)s)",
    )
    parser.add_argument(
        "--fail-above",
        type=float,
        metavar="ERROR",
        help="a training whose final validation error is above this counts as failed (default: "
        f"{study.FAIL_ABOVE_BY_DATASET['fashion_mnist']} on fashion_mnist, {study.FAIL_ABOVE} on other data)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the embedded digits instead of Fashion-MNIST's files (nothing to fetch, about a quarter of the "
        "time; its errors rank networks less well): half of digits trained on (899 images), the other half "
        f"scored, out {study.QUICK_CONFIG.out}; the other flags apply on top",
    )
    flags.add_search_arguments(parser, study.STUDY_CONFIG, port_help="; space i uses --oracle-port + i")


def run(args):
    spaces = [name.strip() for name in args.spaces.split(",") if name.strip()]
    config = study.QUICK_CONFIG if args.quick else study.STUDY_CONFIG
    summary = study.run_study(
        spaces,
        samples=args.samples,
        flops=flags.parse_window(args.flops, "--flops"),
        proxy_check=args.proxy_check,
        seed_check=args.seed_check,
        confirm=args.confirm,
        fail_above=args.fail_above,
        config=config,
        **flags.search_settings(args),
    )
    if summary is None:
        return 0
    for line in report.verdict_lines(summary):
        print(line)
    return 0
