"""The TF Serving REST subset over 127.0.0.1: formats, errors, concurrency, CLI."""

import http.client
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_regnet import export as kexport  # noqa: E402
from keras_regnet import serving  # noqa: E402

REPO = Path(__file__).parent.parent
NAME = "regnet"
LIMIT = 1024 * 1024  # small body limit so the 413 test stays cheap


def small_model():
    import keras_regnet

    return keras_regnet.RegNetX32(input_shape=(32, 32, 1), classes=10)


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def base_dir(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving") / NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kexport.export_saved_model(model, base, verify=False)  # test_export verifies
    return base


@pytest.fixture(scope="module")
def server(base_dir):
    srv = serving.ModelServer(base_dir, name=NAME, port=0, max_body_bytes=LIMIT)
    srv.start()
    thread = srv.thread
    assert srv.port > 0 and thread.is_alive()
    yield srv
    srv.stop()
    assert not thread.is_alive() and not srv.running


def call(port, method, path, body=None, raw=None, headers=None):
    """One HTTP request on a fresh connection -> (status, parsed JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def expected(model, x):
    return keras.ops.convert_to_numpy(model(x.astype("float32")))


def test_status_and_metadata(server):
    status, body = call(server.port, "GET", f"/v1/models/{NAME}")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    status, body = call(server.port, "GET", f"/v1/models/{NAME}/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    sig = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    images_def = sig["inputs"]["images"]
    assert images_def["dtype"] == "DT_UINT8"
    assert [d["size"] for d in images_def["tensor_shape"]["dim"]] == ["-1", "32", "32", "1"]
    assert set(sig["outputs"]) == {"probabilities", "classes"}


def test_row_format(server, model):
    x = images(3, seed=1)
    status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", {"instances": x.tolist()})
    assert status == 200, body
    want = expected(model, x)
    assert len(body["predictions"]) == 3
    for row, probs in zip(body["predictions"], want):
        assert set(row) == {"probabilities", "classes"}
        np.testing.assert_allclose(row["probabilities"], probs, atol=1e-5)
        assert row["classes"] == int(probs.argmax())


def test_columnar_format_versioned_url_and_signature_name(server, model):
    x = images(2, seed=2)
    for inputs in (x.tolist(), {"images": x.tolist()}):
        status, body = call(
            server.port,
            "POST",
            f"/v1/models/{NAME}/versions/1:predict",
            {"inputs": inputs, "signature_name": "serving_default"},
        )
        assert status == 200, body
        want = expected(model, x)
        np.testing.assert_allclose(body["outputs"]["probabilities"], want, atol=1e-5)
        assert body["outputs"]["classes"] == want.argmax(-1).tolist()
    # Row instances may name the input, as TF Serving allows.
    status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", {"instances": [{"images": x[0].tolist()}]})
    assert status == 200 and body["predictions"][0]["classes"] == int(want[0].argmax())


IMAGE = images(1)[0].tolist()
ZEROS = json.dumps({"instances": np.zeros((1, 32, 32, 1), int).tolist()}).encode()
BAD_REQUESTS = [
    ("malformed", dict(raw=b'{"instances": [[[[1, 2'), 400, "malformed JSON"),
    ("not object", dict(body=[1, 2]), 400, "JSON object"),
    ("no key", dict(body={"foo": 1}), 400, '"instances"'),
    ("both keys", dict(body={"instances": [IMAGE], "inputs": [IMAGE]}), 400, "exactly one"),
    ("wrong rank", dict(body={"instances": IMAGE}), 400, "rank 4"),
    ("wrong size", dict(body={"instances": np.zeros((1, 28, 28, 1), int).tolist()}), 400, "shape"),
    ("ragged", dict(body={"instances": [IMAGE, IMAGE[:5]]}), 400, "rectangular"),
    ("strings", dict(body={"instances": [[[["a"]] * 32] * 32]}), 400, "only numbers"),
    ("booleans", dict(body={"instances": [[[[True]] * 32] * 32]}), 400, "only numbers"),
    ("booleans mixed", dict(body={"instances": [[[[1]] * 31 + [[True]]] * 32]}), 400, "only numbers"),
    (
        "booleans mixed columnar",
        dict(body={"inputs": {"images": [[[[0]] * 31 + [[False]]] * 32]}}),
        400,
        "only numbers",
    ),
    ("null", dict(body={"instances": [[[[1]] * 31 + [[None]]] * 32]}), 400, "only numbers"),
    ("fractions", dict(body={"instances": [[[[0.5]] * 32] * 32]}), 400, "whole numbers"),
    ("out of range", dict(body={"instances": [[[[256]] * 32] * 32]}), 400, r"\[0, 255\]"),
    ("negative", dict(body={"instances": [[[[-1]] * 32] * 32]}), 400, r"\[0, 255\]"),
    ("nan", dict(raw=ZEROS.replace(b"0", b"NaN", 1)), 400, "finite"),
    ("inf", dict(raw=ZEROS.replace(b"0", b"1e999", 1)), 400, "NaN or infinity"),
    ("empty rows", dict(body={"instances": []}), 400, "empty"),
    ("empty columns", dict(body={"inputs": []}), 400, "empty batch"),
    ("signature", dict(body={"instances": [IMAGE], "signature_name": "nope"}), 400, "not found"),
    ("signature type", dict(body={"instances": [IMAGE], "signature_name": [1]}), 400, "string"),
    ("input name", dict(body={"inputs": {"pixels": [IMAGE]}}), 400, "input names"),
    ("too big", dict(raw=b" " * (LIMIT + 1)), 413, "exceeds the limit"),
]


@pytest.mark.parametrize("case, request_kwargs, status, match", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_4xx_and_server_keeps_serving(server, case, request_kwargs, status, match):
    got, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", **request_kwargs)
    assert got == status, body
    assert set(body) == {"error"} and re.search(match, body["error"]), body
    ok, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", {"instances": [IMAGE]})
    assert ok == 200 and len(body["predictions"]) == 1


def raw_exchange(port, data):
    """Send raw bytes (what http.client will not send) -> (status, JSON)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_missing_length_chunked_and_announced_oversize(server):
    path = f"/v1/models/{NAME}:predict"
    status, body = raw_exchange(server.port, f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 411 and "Content-Length" in body["error"]
    status, body = raw_exchange(
        server.port, f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    assert status == 411 and "chunked" in body["error"]
    status, body = raw_exchange(
        server.port,
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 * LIMIT}\r\nExpect: 100-continue\r\n\r\n".encode(),
    )
    assert status == 413 and "exceeds the limit" in body["error"]
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


@pytest.mark.parametrize(
    "method, path, match",
    [
        ("GET", "/v1/models/other", "not served"),
        ("POST", "/v1/models/other:predict", "not served"),
        ("GET", f"/v1/models/{NAME}/versions/7", "no version '7'"),
        ("GET", "/v2/whatever", "unknown path"),
    ],
)
def test_unknown_model_version_or_path_is_404(server, method, path, match):
    status, body = call(server.port, method, path, body={"instances": [IMAGE]} if method == "POST" else None)
    assert status == 404 and match in body["error"]
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


def test_200_concurrent_requests(server, model):
    batches = [images(1 + i % 3, seed=100 + i) for i in range(200)]

    def one(x):
        return call(server.port, "POST", f"/v1/models/{NAME}:predict", {"instances": x.tolist()})

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, x) for x in batches]
        results = [f.result(timeout=120) for f in futures]
    want = expected(model, np.concatenate(batches))
    got = np.array([row["probabilities"] for status, body in results for row in body["predictions"]])
    assert all(status == 200 for status, _ in results)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_keep_alive_connection_serves_many_requests(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", f"/v1/models/{NAME}:predict", body=json.dumps({"instances": [IMAGE]}))
            response = conn.getresponse()
            assert response.status == 200
            json.loads(response.read())
    finally:
        conn.close()


def test_resolve_version_dir(tmp_path):
    for version in ("1", "3", "10"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "20").mkdir()  # no saved_model.pb: ignored
    assert serving.resolve_version_dir(tmp_path) == (10, str(tmp_path / "10"))
    assert serving.resolve_version_dir(tmp_path / "3") == (3, str(tmp_path / "3"))
    with pytest.raises(FileNotFoundError, match="holds no SavedModel"):
        serving.resolve_version_dir(tmp_path / "20")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        serving.resolve_version_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"port": -1}, ValueError, r"port must be an int in \[0, 65535\]"),
        ({"port": "8501"}, TypeError, "port"),
        ({"name": "a/b"}, ValueError, "name must be"),
        ({"max_body_bytes": 0}, ValueError, "max_body_bytes must be an int >= 1"),
        ({"max_concurrent": 0}, ValueError, "max_concurrent must be an int >= 1"),
        (
            {"max_body_bytes": 10, "max_inflight_bytes": 5},
            ValueError,
            "max_inflight_bytes must be an int >= max_body_bytes",
        ),
    ],
)
def test_model_server_rejects_bad_arguments(base_dir, kwargs, error, match):
    with pytest.raises(error, match=match):
        serving.ModelServer(base_dir, **kwargs)


@pytest.mark.parametrize("keras_backend", ["tensorflow", "jax"])
def test_cli_serve_subprocess(base_dir, model, keras_backend):
    """Serving needs TensorFlow only: it runs the same under another Keras backend."""
    if keras_backend != "tensorflow":
        pytest.importorskip(keras_backend)
    env = dict(
        os.environ,
        KERAS_BACKEND=keras_backend,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "serve", "--model-dir", str(base_dir), "--name", "cli", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True)
    reader.start()
    try:
        port, deadline, seen = None, time.monotonic() + 90, []
        while port is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, "".join(seen)
                continue
            seen.append(line)
            found = re.search(r"http://127\.0\.0\.1:(\d+)/v1/models/cli", line)
            port = found and int(found[1])
        assert port, "server did not start:\n" + "".join(seen)
        while True:  # the URL is printed once bound; poll status anyway
            try:
                status, body = call(port, "GET", "/v1/models/cli")
                break
            except OSError:
                assert time.monotonic() < deadline, "status never answered"
                time.sleep(0.2)
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
        x = images(2, seed=7)
        status, body = call(port, "POST", "/v1/models/cli:predict", {"instances": x.tolist()})
        assert status == 200
        np.testing.assert_allclose([row["probabilities"] for row in body["predictions"]], expected(model, x), atol=1e-5)
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise
        reader.join(timeout=5)
        proc.stdout.close()
    assert rc == 0, "".join(seen)


# ----------------------------------------------------------------- hardening
def raw_reply(port, data, timeout=30):
    """Raw bytes in, whole reply until the server closes -> (status, headers, body)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


@pytest.mark.parametrize(
    "data, status, match",
    [
        (b"hello\r\n\r\n", 400, "Bad request"),
        (b"GET /v1/models/x HTTP/9.9 extra\r\n\r\n", 400, "Bad request"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "too long"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "Too many headers"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, "Line too long"),
        (b"FROB /v1/models/regnet HTTP/1.1\r\n\r\n", 501, "Unsupported method"),
    ],
    ids=["garbage", "bad version", "414", "431 count", "431 line", "501"],
)
def test_http_level_errors_are_json(server, data, status, match):
    got, headers, payload = raw_reply(server.port, data)
    assert got == status
    assert headers["content-type"] == "application/json"
    body = json.loads(payload)
    assert set(body) == {"error"} and match in body["error"], body
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_json_405_and_connection_survives(server, method):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, f"/v1/models/{NAME}:predict", body=b'{"instances": []}')
        response = conn.getresponse()
        assert response.status == 405
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Allow") == "POST"
        assert method in json.loads(response.read())["error"]
        conn.request("GET", f"/v1/models/{NAME}")  # same connection: body was drained
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())
    finally:
        conn.close()
    status, body = call(server.port, method, "/v1/models/other")
    assert status == 404 and "not served" in body["error"]


def test_head_is_get_without_body(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for path, status in (
            (f"/v1/models/{NAME}", 200),
            ("/v1/models/other", 404),
            (f"/v1/models/{NAME}:predict", 405),
        ):
            conn.request("HEAD", path)
            response = conn.getresponse()
            assert response.status == status
            assert response.getheader("Content-Type") == "application/json"
            assert int(response.getheader("Content-Length")) > 0
            assert response.read() == b""
    finally:
        conn.close()


def test_oversized_body_is_read_and_answered_413(server):
    """Far over the limit (24x): the client still reads the 413 (no BrokenPipe)."""
    size = 24 * LIMIT + 5
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", f"/v1/models/{NAME}:predict", body=b" " * size)
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("Content-Type") == "application/json"
        error = json.loads(response.read())["error"]
    finally:
        conn.close()
    assert f"{size} bytes exceeds the limit of {LIMIT} bytes" in error
    assert "--max-body-bytes" in error and "at least 25 requests" in error
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


def test_requests_over_the_inflight_budget_get_503_at_once(base_dir):
    """One admitted request holds the whole budget while its body trickles in;
    the next one is refused at once with JSON and Retry-After, not queued."""
    import socket

    path = f"/v1/models/{NAME}:predict"
    body = json.dumps({"instances": [IMAGE]}).encode()
    big = body + b" " * (LIMIT - len(body))  # valid JSON of exactly LIMIT bytes
    with serving.ModelServer(base_dir, name=NAME, port=0, max_body_bytes=LIMIT, max_inflight_bytes=LIMIT) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as slow:
            slow.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(big)}\r\n\r\n".encode() + big[:1000])
            deadline = time.monotonic() + 10
            while srv._inflight == 0:  # admitted once its headers are parsed
                assert time.monotonic() < deadline
                time.sleep(0.01)
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            try:
                start = time.monotonic()
                conn.request("POST", path, body=body)
                response = conn.getresponse()
                assert time.monotonic() - start < 5
                assert response.status == 503
                assert response.getheader("Retry-After") == "1"
                assert response.getheader("Content-Type") == "application/json"
                assert "--max-inflight-bytes" in json.loads(response.read())["error"]
                slow.sendall(big[1000:])
                reply = b""
                while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                    reply += slow.recv(65536)
                assert reply.startswith(b"HTTP/1.1 200")
                conn.request("POST", path, body=body)  # budget released
                response = conn.getresponse()
                assert response.status == 200 and json.loads(response.read())
            finally:
                conn.close()
        assert srv._inflight == 0


def test_body_is_parsed_in_bounded_memory():
    """parse_request holds one instance as Python objects at a time: its peak
    is a fraction of the text; json.loads' is several times the text."""
    import tracemalloc

    text = json.dumps({"instances": images(100, seed=3).tolist(), "signature_name": "serving_default"})
    tracemalloc.start()
    try:
        body = serving.parse_request(text)
        parsed_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        json.loads(text)
        loads_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parsed_peak < 0.5 * len(text) < loads_peak / 8, (parsed_peak, loads_peak, len(text))
    assert body["signature_name"] == "serving_default"
    stacked = np.asarray(body["instances"])
    assert stacked.dtype == np.uint8 and stacked.shape == (100, 32, 32, 1)
    np.testing.assert_array_equal(stacked, images(100, seed=3))
    with pytest.raises(json.JSONDecodeError):
        serving.parse_request('{"instances": [[1], [2]] x')


def test_big_batch_runs_in_chunks(server, model):
    x = images(7, seed=11)
    server.model.run_batch = 3
    try:
        status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", {"inputs": x.tolist()})
    finally:
        server.model.run_batch = serving.RUN_BATCH
    assert status == 200, body
    np.testing.assert_allclose(body["outputs"]["probabilities"], expected(model, x), atol=1e-5)


def test_python_api_refuses_booleans(server):
    with pytest.raises(serving.RequestError, match="only numbers"):
        server.model.predict({"instances": [[[[1]] * 31 + [[True]]] * 32]})


def test_dropped_clients_are_one_log_line_each(server, caplog, capsys):
    import logging
    import socket
    import struct

    path = f"/v1/models/{NAME}:predict"
    body = json.dumps({"instances": [IMAGE]}).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    caplog.set_level(logging.WARNING, logger="keras_regnet.serving")
    for partial in (True, True, False, False):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        # mid-body, or right after the request before the answer
        sock.sendall(head.encode() + (body[:100] if partial else body))
        time.sleep(0.2 if partial else 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the client is killed
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        dropped = [r for r in caplog.records if "dropped the connection" in r.getMessage()]
        if len(dropped) >= 4:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # anything late would show up now
    err = capsys.readouterr().err
    dropped = [r for r in caplog.records if "dropped the connection" in r.getMessage()]
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert len(dropped) == 4, [r.getMessage() for r in caplog.records]
    assert all("\n" not in r.getMessage() and r.exc_info is None for r in dropped)
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


def test_version_numbers_and_other_verbs(server):
    status, body = call(server.port, "GET", f"/v1/models/{NAME}/versions/01")
    assert status == 200 and body["model_version_status"][0]["version"] == "1"
    status, body = call(server.port, "POST", f"/v1/models/{NAME}/versions/001:predict", {"instances": [IMAGE]})
    assert status == 200 and len(body["predictions"]) == 1
    for verb in ("classify", "regress"):
        status, body = call(server.port, "POST", f"/v1/models/{NAME}:{verb}", {"examples": [{"x": 1}]})
        assert status == 400 and ":predict only" in body["error"], body
        assert f":{verb}" in body["error"]
    status, body = call(server.port, "GET", f"/v1/models/{NAME}/versions/10")
    assert status == 404 and "no version '10'" in body["error"]


def test_cli_refuses_bad_flags_in_one_line(base_dir, capsys):
    from apps import cli

    for flags, match in (
        (["--max-body-bytes", "0"], "--max-body-bytes must be >= 1"),
        (["--max-concurrent", "0"], "--max-concurrent must be >= 1"),
        (["--max-body-bytes", "100", "--max-inflight-bytes", "10"], "--max-inflight-bytes must be >= --max-body-bytes"),
    ):
        assert cli.main(["serve", "--model-dir", str(base_dir), "--port", "0", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and match in err, err


def _expect():
    from keras_regnet import serving_parse

    return serving_parse.expectations([{"images": (None, 32, 32, 1)}])


@pytest.mark.parametrize(
    "text, match",
    [
        # a flat list of numbers: refused at its first number (the rest is not even valid JSON)
        ('{"instances": [0, 0, 0, @@@', "element 0 is a number"),
        ('{"inputs": [7, 1, @@@', "element 0 is a number"),
        # nested lists of the wrong depth: refused from the leading brackets
        ('{"instances": [[[[[1]]]], @@@', "element 0 is rank 4"),
        ('{"instances": [{"images": [[1]]}, @@@', "element 0 is rank 2"),
        # a ragged batch: refused at the first instance that differs from the first one
        ('{"instances": [' + json.dumps(IMAGE) + ", [[[1]]], @@@", "rectangular.*element 1 has shape"),
        ('{"instances": [' + json.dumps(IMAGE) + ", [[1]], @@@", "rectangular.*element 1 has rank 2"),
        # right rank, far too many numbers: refused before the instance is decoded
        ('{"instances": [[[[' + "0," * 200_000 + "@@@", "does not end within"),
    ],
)
def test_parse_refuses_wrong_shapes_as_soon_as_it_can_know(text, match):
    with pytest.raises(serving.RequestError, match=match):
        serving.parse_request(text, _expect())


def test_flat_number_lists_parse_in_memory_proportional_to_the_body():
    """Refused at once where images are expected; where numbers are the
    instances (a rank-1 input), one compact array at about a byte a number."""
    import tracemalloc

    from keras_regnet import serving_parse

    text = '{"instances": [' + "0, 17, 255, " * 300_000 + "3]}"
    tracemalloc.start()
    try:
        with pytest.raises(serving.RequestError, match="element 0 is a number"):
            serving.parse_request(text, _expect())
        refused_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        body = serving.parse_request(text, serving_parse.expectations([{"x": (None,)}]))
        parsed_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused_peak < 64 * 1024, refused_peak
    assert parsed_peak < 0.75 * len(text), (parsed_peak, len(text))
    values = body["instances"]
    assert values.dtype == np.uint8 and values.shape == (900_001,) and values[-4:].tolist() == [0, 17, 255, 3]
    with pytest.raises(serving.RequestError, match="finite"):
        serving.parse_request('{"instances": [1, NaN]}')
    with pytest.raises(serving.RequestError, match="rectangular"):
        serving.parse_request('{"instances": [1, [2]]}')


def test_flat_number_list_gets_its_400_naming_the_shape(server):
    raw = ('{"instances": [' + "0, " * 300_000 + "0]}").encode()
    status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict", raw=raw)
    assert status == 400 and "element 0 is a number" in body["error"] and "[32, 32, 1]" in body["error"], body


def test_negative_content_length_is_400_naming_it(server):
    path = f"/v1/models/{NAME}:predict"
    status, body = raw_exchange(server.port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".encode())
    assert status == 400 and "'-5'" in body["error"], body
