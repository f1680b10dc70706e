"""`keras-regnet serve`: the TF Serving REST API over an exported SavedModel."""

import sys

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # as keras_regnet.serving; no import


def add_arguments(parser):
    parser.add_argument("--model-dir", required=True, metavar="DIR",
                        help="base folder with version subfolders (the highest "
                             "is served) or one version folder")
    parser.add_argument("--name", default="model",
                        help="model name in the URLs /v1/models/NAME "
                             "(default: model)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, this "
                             "machine only)")
    parser.add_argument("--port", type=int, default=8501,
                        help="port, 0 for any free one (default: 8501, TF "
                             "Serving's REST port)")
    parser.add_argument("--max-body-bytes", type=int,
                        default=DEFAULT_MAX_BODY_BYTES,
                        help="largest request body accepted (default: 64 MiB)")


def run(args):
    from keras_regnet.serving import serve

    def ready(server):
        print(f"serving {server.model.path} (version {server.model.version}) "
              f"at {server.url}  (Ctrl-C to stop)", flush=True)

    serve(args.model_dir, name=args.name, host=args.host, port=args.port,
          max_body_bytes=args.max_body_bytes, ready=ready)
    print("stopped", file=sys.stderr)
    return 0
