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
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
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
    assert body == {"model_version_status": [{
        "version": "1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
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
    status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict",
                        {"instances": x.tolist()})
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
            server.port, "POST", f"/v1/models/{NAME}/versions/1:predict",
            {"inputs": inputs, "signature_name": "serving_default"})
        assert status == 200, body
        want = expected(model, x)
        np.testing.assert_allclose(body["outputs"]["probabilities"], want, atol=1e-5)
        assert body["outputs"]["classes"] == want.argmax(-1).tolist()
    # Row instances may name the input, as TF Serving allows.
    status, body = call(server.port, "POST", f"/v1/models/{NAME}:predict",
                        {"instances": [{"images": x[0].tolist()}]})
    assert status == 200 and body["predictions"][0]["classes"] == int(want[0].argmax())


IMAGE = images(1)[0].tolist()
ZEROS = json.dumps({"instances": np.zeros((1, 32, 32, 1), int).tolist()}).encode()
BAD_REQUESTS = [
    ("malformed", dict(raw=b'{"instances": [1, 2'), 400, "malformed JSON"),
    ("not object", dict(body=[1, 2]), 400, "JSON object"),
    ("no key", dict(body={"foo": 1}), 400, '"instances"'),
    ("both keys", dict(body={"instances": [IMAGE], "inputs": [IMAGE]}), 400, "exactly one"),
    ("wrong rank", dict(body={"instances": IMAGE}), 400, "rank 4"),
    ("wrong size", dict(body={"instances": np.zeros((1, 28, 28, 1), int).tolist()}), 400, "shape"),
    ("ragged", dict(body={"instances": [IMAGE, IMAGE[:5]]}), 400, "rectangular"),
    ("strings", dict(body={"instances": [[["a"] * 32] * 32]}), 400, "only numbers"),
    ("booleans", dict(body={"instances": [[[[True]] * 32] * 32]}), 400, "only numbers"),
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


@pytest.mark.parametrize("case, request_kwargs, status, match", BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_4xx_and_server_keeps_serving(
        server, case, request_kwargs, status, match):
    got, body = call(server.port, "POST", f"/v1/models/{NAME}:predict",
                     **request_kwargs)
    assert got == status, body
    assert set(body) == {"error"} and re.search(match, body["error"]), body
    ok, body = call(server.port, "POST", f"/v1/models/{NAME}:predict",
                    {"instances": [IMAGE]})
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
    status, body = raw_exchange(server.port, f"POST {path} HTTP/1.1\r\n"
                                "Host: x\r\n\r\n".encode())
    assert status == 411 and "Content-Length" in body["error"]
    status, body = raw_exchange(server.port, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n".encode())
    assert status == 411 and "chunked" in body["error"]
    status, body = raw_exchange(server.port, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                                f"Content-Length: {10 * LIMIT}\r\n"
                                "Expect: 100-continue\r\n\r\n".encode())
    assert status == 413 and "exceeds the limit" in body["error"]
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


@pytest.mark.parametrize("method, path, match", [
    ("GET", "/v1/models/other", "not served"),
    ("POST", "/v1/models/other:predict", "not served"),
    ("GET", f"/v1/models/{NAME}/versions/7", "no version '7'"),
    ("GET", "/v2/whatever", "unknown path"),
])
def test_unknown_model_version_or_path_is_404(server, method, path, match):
    status, body = call(server.port, method, path,
                        body={"instances": [IMAGE]} if method == "POST" else None)
    assert status == 404 and match in body["error"]
    assert call(server.port, "GET", f"/v1/models/{NAME}")[0] == 200


def test_200_concurrent_requests(server, model):
    batches = [images(1 + i % 3, seed=100 + i) for i in range(200)]

    def one(x):
        return call(server.port, "POST", f"/v1/models/{NAME}:predict",
                    {"instances": x.tolist()})

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, x) for x in batches]
        results = [f.result(timeout=120) for f in futures]
    want = expected(model, np.concatenate(batches))
    got = np.array([row["probabilities"] for status, body in results
                    for row in body["predictions"]])
    assert all(status == 200 for status, _ in results)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_keep_alive_connection_serves_many_requests(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", f"/v1/models/{NAME}:predict",
                         body=json.dumps({"instances": [IMAGE]}))
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


@pytest.mark.parametrize("kwargs, error, match", [
    ({"port": -1}, ValueError, r"port must be an int in \[0, 65535\]"),
    ({"port": "8501"}, TypeError, "port"),
    ({"name": "a/b"}, ValueError, "name must be"),
    ({"max_body_bytes": 0}, ValueError, "max_body_bytes must be an int >= 1"),
    ({"max_concurrent": 0}, ValueError, "max_concurrent must be an int >= 1"),
])
def test_model_server_rejects_bad_arguments(base_dir, kwargs, error, match):
    with pytest.raises(error, match=match):
        serving.ModelServer(base_dir, **kwargs)


def test_cli_serve_subprocess(base_dir, model):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(
                   [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "apps.cli", "serve", "--model-dir", str(base_dir),
         "--name", "cli", "--port", "0"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout],
                              daemon=True)
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
        status, body = call(port, "POST", "/v1/models/cli:predict",
                            {"instances": x.tolist()})
        assert status == 200
        np.testing.assert_allclose(
            [row["probabilities"] for row in body["predictions"]],
            expected(model, x), atol=1e-5)
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
