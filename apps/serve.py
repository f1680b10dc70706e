"""`keras-regnet serve`: the TF Serving REST API over an exported SavedModel."""

import sys

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # as keras_regnet.serving; no import


def add_arguments(parser):
    parser.add_argument(
        "--model-dir",
        required=True,
        metavar="DIR",
        help="base folder with version subfolders (the highest is served) or one version folder",
    )
    parser.add_argument("--name", default="model", help="model name in the URLs /v1/models/NAME (default: model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument(
        "--port", type=int, default=8501, help="port, 0 for any free one (default: 8501, TF Serving's REST port)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body accepted; larger ones get 413 (default: 64 MiB)",
    )
    parser.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=None,
        help="request bodies admitted at once (being read, "
        "parsed, queued or run); a request that does not "
        "fit gets 503 with Retry-After at once (default: "
        "4 x --max-body-bytes)",
    )
    parser.add_argument("--max-concurrent", type=int, default=4, help="model calls run at once (default: 4)")


def _check(args):
    """Bad flags as one ValueError naming the flag, before loading anything."""
    for flag, value in (("--max-body-bytes", args.max_body_bytes), ("--max-concurrent", args.max_concurrent)):
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if args.max_inflight_bytes is not None and args.max_inflight_bytes < args.max_body_bytes:
        raise ValueError(
            f"--max-inflight-bytes must be >= --max-body-bytes ({args.max_body_bytes}), got {args.max_inflight_bytes}"
        )


def run(args):
    _check(args)
    from keras_regnet.serving import serve

    def ready(server):
        print(
            f"serving {server.model.path} (version {server.model.version}) at {server.url}  (Ctrl-C to stop)",
            flush=True,
        )

    serve(
        args.model_dir,
        name=args.name,
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        max_inflight_bytes=args.max_inflight_bytes,
        max_concurrent=args.max_concurrent,
        ready=ready,
    )
    print("stopped", file=sys.stderr)
    return 0
