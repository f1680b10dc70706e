"""Serve an exported SavedModel over the TF Serving REST API (a subset).

Why: to try an export end to end (curl, a notebook, a load test) without
Docker, and with the *same* URLs and JSON as TF Serving, so clients written
against this server work unchanged against the real one. The folder written
by `keras_regnet.export.export_saved_model` is servable by TF Serving as is:

    docker run -p 8501:8501 -v "$PWD/DIR:/models/NAME" -e MODEL_NAME=NAME \\
        tensorflow/serving

(`DIR` is the base folder holding the numbered version folders.)

Endpoints (`NAME` is the served name, `N` a version):

    GET  /v1/models/NAME[/versions/N]            model_version_status
    GET  /v1/models/NAME[/versions/N]/metadata   signature_def
    POST /v1/models/NAME[/versions/N]:predict    {"instances": [...]} (row) or
                                                 {"inputs": ...} (columnar),
                                                 optional "signature_name"

Row requests are answered `{"predictions": [...]}` (one dict per instance when
the signature has several outputs), columnar ones `{"outputs": ...}`. Every
error, including the ones `http.server` itself raises (bad request line, 414,
431, unknown method), is `{"error": "..."}` with `Content-Type:
application/json`: 404 unknown model/version/path, 400 bad request (and
`:classify`/`:regress`, which this server does not implement), 405 a method
other than GET/HEAD/POST, 411 no Content-Length (400 one that is not a
byte count), 413 body over
`max_body_bytes` (the body is read and dropped so the client can read the
answer), 503 with `Retry-After` when the server is full (see below).
`versions/N` is compared as a number, as TF Serving does (`01` is version 1).

Input rules, stricter than TF Serving so bad data fails loudly: numbers only
(no strings, booleans or nulls, also not mixed with numbers), a rectangular
batch of rank 4 whose image size matches the signature, at least one
instance, finite values (the JSON `NaN`/`Infinity` extensions are refused).
For a uint8 signature every value must be a whole number in [0, 255] (`12.0`
is accepted, `12.5` and `256` are refused rather than silently truncated or
wrapped).

Design: the standard library's `http.server.ThreadingHTTPServer` parses HTTP
(one thread per connection, HTTP/1.1 keep-alive); the loaded concrete
function is thread-safe and TensorFlow releases the GIL while it runs, so
concurrent requests overlap JSON work with model work.

Memory is bounded by admission, not by luck: a predict request is admitted
(its Content-Length counted against `max_inflight_bytes`, default 4 x
`max_body_bytes`) before its body is read; one that does not fit is answered
503 at once. An admitted body is parsed one instance at a time straight into
compact numpy arrays (never the whole batch as Python lists), and refused at
the first instance whose rank or shape is wrong (`serving_parse`), and the model
runs on at most `RUN_BATCH` instances per call, `max_concurrent` calls at
once. Peak memory is the model plus about 1.3-2x the admitted bodies
(`bench/serve_load.py` measures it). A client that drops its connection is
one warning line in the log, never a traceback.
"""

import http.server
import json
import logging
import os
import re
import socket
import sys
import threading
import time

import numpy as np

from keras_regnet.serving_parse import RequestError, expectations, parse_request, rows_to_columns, to_array

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ModelServer", "RequestError", "ServedModel", "parse_request", "serve"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
RUN_BATCH = 64  # instances per model call: bounds activation memory
_DRAIN_BYTES = 1 << 30  # refused bodies: read and dropped up to this much
_DRAIN_SECONDS = 30  # ... or for this long, then the connection is closed
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?"
    r"(?P<tail>/metadata|:predict|:classify|:regress)?/?$"
)


def resolve_version_dir(model_dir):
    """Return `(version, folder)` for a base folder or a version folder.

    A base folder serves its highest numbered subfolder holding a
    `saved_model.pb` (TF Serving's default policy); a folder holding
    `saved_model.pb` itself is served as its own name's version (1 when the
    name is not a number).
    """
    if not isinstance(model_dir, (str, os.PathLike)):
        raise TypeError(f"model_dir must be a str or os.PathLike, got {model_dir!r}")
    model_dir = os.fspath(model_dir)
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"model_dir {model_dir!r} is not a directory")
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        name = os.path.basename(os.path.normpath(model_dir))
        return (int(name) if name.isdigit() else 1), model_dir
    versions = [
        int(entry)
        for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isfile(os.path.join(model_dir, entry, "saved_model.pb"))
    ]
    if not versions:
        raise FileNotFoundError(
            f"model_dir {model_dir!r} holds no SavedModel: expected "
            "saved_model.pb in it or in a numbered version subfolder"
        )
    version = max(versions)
    return version, os.path.join(model_dir, str(version))


class ServedModel:
    """A loaded SavedModel plus the request -> tensor -> JSON logic.

    Independent of HTTP so it can be tested and reused; `predict(body)` takes
    the parsed JSON request (from `parse_request`, or plain Python lists) and
    returns the JSON-ready answer or raises `RequestError`.
    """

    def __init__(self, model_dir, *, max_concurrent=4):
        import tensorflow as tf

        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int):
            raise TypeError(f"max_concurrent must be an int >= 1, got {max_concurrent!r}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an int >= 1, got {max_concurrent}")
        self.version, self.path = resolve_version_dir(model_dir)
        self._tf = tf
        self._loaded = tf.saved_model.load(self.path)  # keeps variables alive
        self.signatures = {key: fn for key, fn in self._loaded.signatures.items() if not key.startswith("__")}
        if not self.signatures:
            raise ValueError(f"the SavedModel at {self.path!r} has no signatures")
        self.signature_defs = _signature_defs(self.path)
        self.expect = expectations([_input_shapes(fn) for fn in self.signatures.values()])
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.run_batch = RUN_BATCH

    def status(self):
        return {
            "model_version_status": [
                {
                    "version": str(self.version),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

    def metadata(self, name):
        return {
            "model_spec": {"name": name, "signature_name": "", "version": str(self.version)},
            "metadata": {"signature_def": {"signature_def": self.signature_defs}},
        }

    def predict(self, body):
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        signature_name = body.get("signature_name", "serving_default")
        if not isinstance(signature_name, str):
            raise RequestError(400, '"signature_name" must be a string')
        fn = self.signatures.get(signature_name)
        if fn is None:
            raise RequestError(
                400, f"signature_name {signature_name!r} not found; available: {sorted(self.signatures)}"
            )
        specs = fn.structured_input_signature[1]
        has_rows, has_columns = "instances" in body, "inputs" in body
        if has_rows == has_columns:
            raise RequestError(
                400, 'request must have exactly one of "instances" (row format) or "inputs" (columnar format)'
            )
        if has_rows:
            feeds = rows_to_columns(body["instances"], specs)
        else:
            feeds = body["inputs"]
            if len(specs) == 1 and not isinstance(feeds, dict):
                feeds = {next(iter(specs)): feeds}
            if not isinstance(feeds, dict) or set(feeds) != set(specs):
                raise RequestError(400, f'"inputs" must map the input names {sorted(specs)} to tensors')
        tensors = {key: _to_array(key, value, specs[key]) for key, value in feeds.items()}
        if len({t.shape[:1] for t in tensors.values()}) != 1:
            raise RequestError(400, "all inputs must have the same batch size")
        outputs = {key: value.tolist() for key, value in self._run(fn, tensors).items()}
        if has_columns:
            if len(outputs) == 1:
                return {"outputs": next(iter(outputs.values()))}
            return {"outputs": outputs}
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        keys = sorted(outputs)
        return {"predictions": [dict(zip(keys, row)) for row in zip(*(outputs[k] for k in keys))]}

    def _run(self, fn, tensors):
        """Run `fn` on at most `run_batch` instances a call -> numpy outputs
        (activation memory then does not grow with the request's batch)."""
        first = next(iter(tensors.values()))
        size = len(first) if first.ndim else 1
        fixed = any(spec.shape.rank and spec.shape[0] is not None for spec in fn.structured_input_signature[1].values())
        step = size if fixed or not first.ndim else max(1, self.run_batch)
        parts = []
        try:
            for start in range(0, size, step):
                feed = {
                    key: self._tf.constant(value[start : start + step] if first.ndim else value)
                    for key, value in tensors.items()
                }
                with self._slots:
                    out = fn(**feed)
                parts.append({key: value.numpy() for key, value in out.items()})
                del feed, out
        except self._tf.errors.InvalidArgumentError as error:
            raise RequestError(400, f"the model rejected the input: {error.message}") from None
        if len(parts) == 1:
            return parts[0]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _input_shapes(fn):
    return {
        key: None if spec.shape.rank is None else tuple(spec.shape.as_list())
        for key, spec in fn.structured_input_signature[1].items()
    }


def _to_array(name, value, spec):
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return to_array(name, value, shape, spec.dtype.as_numpy_dtype)


def _signature_defs(path):
    """The SignatureDefs as TF Serving's metadata JSON spells them."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    defs = saved.meta_graphs[0].signature_def
    return {
        key: json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        for key, value in defs.items()
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for load tests and clients
    server_version = "keras-regnet-serving"
    timeout = 60  # drop idle keep-alive connections so threads end
    # Headers and body go out in two writes; with Nagle on, the second waits
    # for the client's delayed ACK (~40 ms per request on keep-alive).
    disable_nagle_algorithm = True
    _unread = 0  # body bytes announced and not read yet; None: unknowable

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, 414, 431, 501) as JSON."""
        short, long = self.responses.get(code, ("Error", ""))
        text = message or long or short
        if explain:
            text = f"{text}: {explain}"
        self.log_error("code %d, message %s", code, text)
        if self.request_version in ("", "HTTP/0.9"):
            self.request_version = self.protocol_version  # always a status line
        self.close_connection = True
        self._send(code, {"error": text})

    def _send(self, status, payload, headers=()):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self):
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            raise RequestError(
                404, f"unknown path {self.path!r}; expected /v1/models/NAME[/versions/N][/metadata|:predict]"
            )
        app = self.server.app
        name = match["name"]
        if name != app.name:
            raise RequestError(
                404, f"Servable not found for request: model {name!r} is not served (serving {app.name!r})"
            )
        version = match["version"]
        if version is not None and not (
            re.fullmatch(r"[0-9]+", version) and (version.lstrip("0") or "0") == str(app.model.version)
        ):
            raise RequestError(404, f"model {name!r} has no version {version!r} (serving version {app.model.version})")
        return app, match["tail"]

    def _handle(self, method):
        self._unread = self._body_length()
        try:
            self._send(*self._respond(method))
        finally:
            self._discard_body()

    def _respond(self, method):
        """-> (status, payload, headers); client errors become 4xx/503."""
        try:
            app, tail = self._route()
            if method not in ("GET", "HEAD", "POST"):
                raise RequestError(
                    405,
                    f"method {method} is not allowed: GET (or HEAD) for status and metadata, POST for :predict",
                    headers=[("Allow", "GET, HEAD, POST" if tail is None or tail == "/metadata" else "POST")],
                )
            if tail in (":classify", ":regress"):
                raise RequestError(
                    400,
                    f"model {app.name!r} serves :predict only; {tail} is "
                    "not supported by this server (POST to "
                    f"/v1/models/{app.name}:predict)",
                )
            if method != "POST":
                if tail == ":predict":
                    raise RequestError(405, "predict needs POST", headers=[("Allow", "POST")])
                if tail == "/metadata":
                    return 200, app.model.metadata(app.name), ()
                return 200, app.model.status(), ()
            if tail != ":predict":
                raise RequestError(405, "POST is only for NAME:predict", headers=[("Allow", "GET, HEAD")])
            return 200, self._predict(app), ()
        except RequestError as error:
            return error.status, {"error": str(error)}, error.headers
        except (ConnectionError, TimeoutError):
            raise  # the client went away: one line in handle_error
        except Exception as error:  # the model itself failed
            log.exception("predict failed")
            return 500, {"error": f"{type(error).__name__}: {error}"}, ()

    def _predict(self, app):
        limit = app.max_body_bytes
        if self._unread is None or "Content-Length" not in self.headers:
            self.close_connection = True
            if self.headers.get("Transfer-Encoding"):
                raise RequestError(411, "chunked bodies are not supported; send Content-Length")
            if "Content-Length" in self.headers:
                raise RequestError(
                    400, f"bad Content-Length {self.headers['Content-Length']!r}: it must be the body's size in bytes"
                )
            raise RequestError(411, "a Content-Length header is required")
        length = self._unread
        if length > limit:
            self.close_connection = True
            raise RequestError(
                413,
                f"request body of {length} bytes exceeds the limit of "
                f"{limit} bytes (--max-body-bytes): split the instances over "
                f"at least {-(-length // limit)} requests of at most {limit} "
                "bytes each",
            )
        if not app.admit(length):
            raise RequestError(
                503,
                f"server busy: {app.max_inflight_bytes} bytes of requests "
                "are already being served (--max-inflight-bytes); retry later",
                headers=[("Retry-After", "1")],
            )
        try:
            raw = self.rfile.read(length)
            self._unread = 0
            if len(raw) < length:
                self.close_connection = True
                raise ConnectionAbortedError(f"body ended after {len(raw)} of {length} bytes")
            try:  # peak: body bytes + text; then text + compact arrays
                text = raw.decode("utf-8")
                del raw
                body = parse_request(text, app.model.expect)
            except RequestError:
                raise
            except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
                raise RequestError(400, f"malformed JSON: {error}") from None
            except RecursionError:
                raise RequestError(400, "malformed JSON: nested too deeply") from None
            del text
            return app.model.predict(body)
        finally:
            app.release(length)

    def _body_length(self):
        """Announced body bytes (0 if none); None if it cannot be skipped."""
        if self.headers.get("Transfer-Encoding"):
            return None
        length = self.headers.get("Content-Length", "0").strip()
        if not (length.isascii() and length.isdigit() and len(length) < 19):
            return None
        return int(length)

    def _discard_body(self):
        """Read and drop an unread body so the client, which sends it all
        before reading, can read the answer; close when that is not possible."""
        remaining, self._unread = self._unread, 0
        if remaining is None or remaining > _DRAIN_BYTES:
            self.close_connection = True
            return
        buffer = memoryview(bytearray(min(remaining, 1 << 20)))
        deadline = time.monotonic() + _DRAIN_SECONDS
        try:
            while remaining > 0 and time.monotonic() < deadline:
                got = self.rfile.readinto(buffer[: min(remaining, len(buffer))])
                if not got:
                    break
                remaining -= got
        except OSError:
            pass
        if remaining > 0:
            self.close_connection = True

    def handle_expect_100(self):
        """Refuse an announced oversized body before the client sends it."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.app.max_body_bytes:
            self.close_connection = True
            self._send(
                413,
                {
                    "error": f"request body of {length} bytes exceeds "
                    f"the limit of {self.server.app.max_body_bytes} "
                    "bytes (--max-body-bytes)"
                },
            )
            return False
        return super().handle_expect_100()

    def do_GET(self):  # noqa: N802 - stdlib names
        self._handle("GET")

    def do_HEAD(self):  # noqa: N802
        self._handle("HEAD")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_PUT(self):  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._handle("PATCH")

    def do_OPTIONS(self):  # noqa: N802
        self._handle("OPTIONS")


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # accept bursts of concurrent clients (200+)

    def __init__(self, *args, **kwargs):
        self._open = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handle_error(self, request, client_address):
        """A client that went away is one log line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.warning(
                "client %s dropped the connection (%s: %s)",
                ":".join(map(str, client_address[:2])),
                type(error).__name__,
                error,
            )
        else:
            super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        """End idle keep-alive connections so their threads exit now."""
        with self._open_lock:
            for request in list(self._open):
                try:
                    request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class ModelServer:
    """The HTTP server for one SavedModel, run on a background thread.

    Use as a context manager (or `start()` / `stop()`); `port=0` picks a free
    port, readable from `.port` after start. `serve_forever()` blocks instead.
    """

    def __init__(
        self,
        model_dir,
        *,
        name="model",
        host="127.0.0.1",
        port=8501,
        max_body_bytes=DEFAULT_MAX_BODY_BYTES,
        max_concurrent=4,
        max_inflight_bytes=None,
    ):
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"name must be a non-empty string of letters, digits, '_', '.', '-', got {name!r}")
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int in [0, 65535], got {port!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in [0, 65535], got {port}")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise TypeError(f"max_body_bytes must be an int >= 1, got {max_body_bytes!r}")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be an int >= 1, got {max_body_bytes}")
        if max_inflight_bytes is None:
            max_inflight_bytes = 4 * max_body_bytes
        if isinstance(max_inflight_bytes, bool) or not isinstance(max_inflight_bytes, int):
            raise TypeError(f"max_inflight_bytes must be an int >= max_body_bytes, got {max_inflight_bytes!r}")
        if max_inflight_bytes < max_body_bytes:
            raise ValueError(
                f"max_inflight_bytes must be an int >= max_body_bytes ({max_body_bytes}), got {max_inflight_bytes}"
            )
        self.name = name
        self.host = host
        self.max_body_bytes = max_body_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.model = ServedModel(model_dir, max_concurrent=max_concurrent)
        self._requested_port = port
        self._httpd = None
        self._thread = None

    def admit(self, size):
        """Count `size` body bytes in if they fit under `max_inflight_bytes`."""
        with self._inflight_lock:
            if self._inflight + size > self.max_inflight_bytes:
                return False
            self._inflight += size
            return True

    def release(self, size):
        with self._inflight_lock:
            self._inflight -= size

    @property
    def port(self):
        return None if self._httpd is None else self._httpd.server_address[1]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/v1/models/{self.name}"

    def _bind(self):
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._httpd = _HTTPServer((self.host, self._requested_port), _Handler)
        self._httpd.app = self

    def start(self):
        """Bind and serve on a daemon thread; return the bound port."""
        self._bind()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"keras-regnet-serve-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.port

    def serve_forever(self):
        """Bind and serve on this thread until `stop()` from another thread."""
        self._bind()
        httpd = self._httpd
        try:
            httpd.serve_forever(poll_interval=0.1)
        finally:
            httpd.close_connections()
            httpd.server_close()

    def stop(self, timeout=10):
        """Stop accepting requests, close the socket, join the thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        self._httpd, self._thread = None, None
        if thread is not None:
            thread.join(timeout)
            httpd.close_connections()
            httpd.server_close()
            if thread.is_alive():
                raise RuntimeError("server thread did not stop")

    @property
    def thread(self):
        """The background thread serving requests (None when not started)."""
        return self._thread

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(
    model_dir,
    *,
    name="model",
    host="127.0.0.1",
    port=8501,
    max_body_bytes=DEFAULT_MAX_BODY_BYTES,
    max_concurrent=4,
    max_inflight_bytes=None,
    ready=None,
):
    """Serve `model_dir` until Ctrl-C or SIGTERM; return 0.

    `ready`, if given, is called with the running `ModelServer` (the CLI uses
    it to print the URL).
    """
    import signal

    server = ModelServer(
        model_dir,
        name=name,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        max_concurrent=max_concurrent,
        max_inflight_bytes=max_inflight_bytes,
    )
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    try:
        if ready is not None:
            ready(server)
        while not stop.wait(0.5) and server.running:
            pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
