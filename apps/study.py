"""`keras-regnet study`: compare design spaces by the error EDFs of random samples (the paper's study)."""

from keras_regnet import study


def add_arguments(parser):
    parser.add_argument("--spaces", default=",".join(study.SPACES),
                        help="comma-separated design spaces, compared in the paper's pairs (default: all six)")
    parser.add_argument("--samples", type=int, default=study.SAMPLES, help="networks sampled per space (>= 2)")
    parser.add_argument("--epochs", type=int, default=study.EPOCHS, help="epochs per network (one fixed schedule)")
    lo, hi = study.FLOPS
    parser.add_argument("--flops", default=f"{lo / 1e6:g}M:{hi / 1e6:g}M",
                        help="flop window LO:HI at the trained input size (default: %(default)s)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--image-size", type=int, default=study.IMAGE_SIZE)
    parser.add_argument("--batch-size", type=int, default=study.BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=study.LR, help="peak learning rate")
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxy-check", type=int, default=0, metavar="K",
                        help=f"retrain K sampled models for {study.PROXY_FACTOR}x the epochs and report the "
                             "Spearman rank correlation of short and long errors (0: off)")
    parser.add_argument("--workers", type=int, default=None,
                        help="trials trained at once, each in its own process (default: one per CPU core)")
    parser.add_argument("--distributed", choices=("chief", "worker"), default=None,
                        help="KerasTuner chief/worker mode; space i uses --oracle-port + i")
    parser.add_argument("--oracle-host", default="127.0.0.1")
    parser.add_argument("--oracle-port", type=int, default=8000)
    parser.add_argument("--worker-id", default=None, help="worker name (default: the process id)")


def run(args):
    summary = study.run_study(
        spaces=args.spaces, samples=args.samples, epochs=args.epochs, flops=args.flops, dataset=args.dataset,
        data_dir=args.data_dir, image_size=args.image_size, batch_size=args.batch_size, lr=args.lr,
        out=args.out, seed=args.seed, proxy_check=args.proxy_check, distributed=args.distributed,
        oracle_host=args.oracle_host, oracle_port=args.oracle_port, worker_id=args.worker_id,
        workers=args.workers)
    if summary is None:
        return 0
    for c in summary["comparisons"]:
        print(f"{c['a']} vs {c['b']}: KS D={c['ks_d']:.3f} p={c['ks_p']:.3g} -> {c['verdict']}")
    if summary.get("proxy_check"):
        p = summary["proxy_check"]
        print(f"proxy check: Spearman rho={p['spearman']:.3f} (p={p['p']:.3g}, k={p['k']})")
    return 0
