"""Slow, idle and vanishing clients against the real server: nobody locks anybody out."""
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import urlparse

import httpx
import numpy as np
import yaml
from mlflow import MlflowClient

from tests.conftest import REPO, tool_env
from tests.serving.conftest import free_port, register_affine, start_server
from tests.serving.test_app import _image, _png


def trickle(url: str, stop: threading.Event, declared: int = 100_000) -> None:
    """An upload that declares ``declared`` bytes and sends one byte a second."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST /v1/enhance HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        while not stop.wait(1.0):
            try:
                sock.sendall(b"\x89")
            except OSError:  # the server closed it (upload timeout): good, stop
                return


def server_log(gen, server) -> str:
    gen.close()  # terminates the server
    return server.proc.stdout.read()


def test_twenty_slow_uploads_leave_normal_requests_served(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path, max_inflight_megapixels=0.1, upload_timeout_s=60)
    server = next(gen)
    stop = threading.Event()
    slow = [threading.Thread(target=trickle, args=(server.base_url, stop), daemon=True) for _ in range(20)]
    for t in slow:
        t.start()
    time.sleep(2.0)  # all 20 are connected and trickling
    try:
        img = _image(120, 160)
        with server.client() as c:
            codes = [c.post("/v1/enhance", content=_png(img)).status_code for _ in range(12)]
            metrics = c.get("/metrics").text
    finally:
        stop.set()
    assert codes == [200] * 12  # the 20 trickles hold no admission: once they held every slot (503s)
    assert "brighthouse_queue_depth 0.0" in metrics
    server_log(gen, server)


def test_an_idle_half_upload_gets_408_and_its_connection_closed(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path, upload_timeout_s=2)
    server = next(gen)
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"\x89PNG" * 10)
        start = time.monotonic()
        reply = b""
        while chunk := sock.recv(65536):  # returns b"" once the server closes the connection
            reply += chunk
        waited = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in reply, reply[:300]
    assert 1.5 < waited < 10
    with server.client() as c:
        assert "brighthouse_upload_timeouts_total 1.0" in c.get("/metrics").text
        assert c.post("/v1/enhance", content=_png(_image(64, 64))).status_code == 200
    server_log(gen, server)


def test_a_client_that_disconnects_mid_upload_is_one_info_line(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path)
    server = next(gen)
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"\x89PNG" * 10)
        time.sleep(0.5)
    time.sleep(0.5)
    with server.client() as c:
        assert "brighthouse_client_disconnects_total 1.0" in c.get("/metrics").text
        assert c.post("/v1/enhance", content=_png(np.zeros((32, 32, 3), np.uint8))).status_code == 200
    log = server_log(gen, server)
    gone = [line for line in log.splitlines() if "client went away" in line]
    assert len(gone) == 1 and gone[0].startswith("INFO"), log
    assert "Traceback" not in log and "ERROR" not in log, log


def test_many_uploads_at_once_stay_within_the_receive_budget(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path, max_receiving_mb=0.05)  # 52 kB of bodies arriving at once
    server = next(gen)
    body = _png(_image(150, 150, seed=3))  # about 68 kB: over the budget by itself
    with server.client() as c:
        r = c.post("/v1/enhance", content=body)
        assert r.status_code == 503 and "uploads arriving" in r.json()["detail"] and r.headers["retry-after"]
        assert c.post("/v1/enhance", content=_png(np.zeros((32, 32, 3), np.uint8))).status_code == 200
        assert "brighthouse_receiving_bytes 0.0" in c.get("/metrics").text
    server_log(gen, server)


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.3)


def test_a_broken_registry_keeps_the_loaded_version_and_says_so_once(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    gen = start_server(tmp_path)
    server = next(gen)
    db = tmp_path / "state" / "mlflow.db"
    good = db.read_bytes()
    with open(db, "r+b") as fh:  # the same file, now unreadable: a corrupt or half-restored store
        fh.write(b"this is not a database" * 50)
    try:
        with server.client() as c:
            wait_for(lambda: "problem" in c.get("/readyz").json())
            time.sleep(3)  # three more polls: still one log line
            ready = c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["version"] == "1"
            assert "model registry unavailable" in ready.json()["problem"]
            assert "brighthouse_registry_up 0.0" in c.get("/metrics").text
            assert c.post("/v1/enhance", content=_png(_image(64, 64))).headers["x-model-version"] == "1"
            db.write_bytes(good)
            wait_for(lambda: "problem" not in c.get("/readyz").json())
            assert "brighthouse_registry_up 1.0" in c.get("/metrics").text
    finally:
        db.write_bytes(good)
    log = server_log(gen, server)
    assert sum(line.startswith("ERROR") and "model registry unavailable" in line for line in log.splitlines()) == 1, log
    assert "registry problem cleared" in log


def delete_artifacts(version: str) -> None:
    uri = MlflowClient().get_model_version_download_uri("brighthouse", version)
    shutil.rmtree(urlparse(uri).path)


def test_a_champion_that_cannot_be_loaded_is_named_at_start_and_the_server_waits(tmp_path, params, mlflow_store):
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    delete_artifacts("1")
    raw = tmp_path / "raw"
    raw.mkdir()
    cfg = yaml.safe_load((REPO / "params.yaml").read_text())
    cfg["serve"]["poll_seconds"] = 1
    (raw / "params.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen(["brighthouse", "serve", "--params", str(raw / "params.yaml"), "--port", str(port)],
                            cwd=raw, env=tool_env(BRIGHTHOUSE_HOME=str(tmp_path / "state")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200)
        r = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert r.status_code == 503 and "version 1 cannot be loaded" in r.json()["reason"]
        time.sleep(2)
        assert proc.poll() is None  # up, not ready, retrying: a fixed registry makes it ready
    finally:
        proc.terminate()
        log = proc.communicate(timeout=20)[0]
    errors = [line for line in log.splitlines() if "version 1 cannot be loaded" in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR") and "Traceback" not in log, log


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0
