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
        default=0,
        metavar="K",
        help=f"retrain K sampled models for {study.PROXY_FACTOR}x the epochs and report the "
        "Spearman rank correlation of short and long errors (0: off)",
    )
    flags.add_search_arguments(parser, study.STUDY_CONFIG, port_help="; space i uses --oracle-port + i")


def run(args):
    spaces = [name.strip() for name in args.spaces.split(",") if name.strip()]
    summary = study.run_study(
        spaces,
        samples=args.samples,
        flops=flags.parse_window(args.flops, "--flops"),
        proxy_check=args.proxy_check,
        **flags.search_settings(args),
    )
    if summary is None:
        return 0
    for c in summary["comparisons"]:
        print(f"{c['a']} vs {c['b']}: KS D={c['ks_d']:.3f} p={c['ks_p']:.3g} -> {c['verdict']}")
    if summary.get("proxy_check"):
        p = summary["proxy_check"]
        print(f"proxy check: Spearman rho={p['spearman']:.3f} (p={p['p']:.3g}, k={p['k']})")
    return 0
