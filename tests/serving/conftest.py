"""A real uvicorn server on a loopback port, over a private MLflow store holding affine models."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from components.register import RegisterPaths, run_register
from tests.conftest import REPO, fake_stage_outputs, free_port, tool_env


def register_affine(params, root: Path, scale: float, offset: float, inference: dict | None = None) -> str:
    dirs = fake_stage_outputs(root, scale, offset, inference=inference)
    paths = RegisterPaths(dirs["train"], dirs["evaluate"], dirs["export"], dirs["register"], dirs["lmdb"])
    return run_register(params.register_, paths)["version"]


class Server:
    def __init__(self, base_url: str, proc: subprocess.Popen, state: Path) -> None:
        self.base_url, self.proc, self.state = base_url, proc, state

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready in {timeout} s")


def start_server(tmp_path: Path, state: Path | None = None, bin_dir: Path | None = None,
                 env: dict[str, str] | None = None, **serve: object):
    """``brighthouse serve`` (from ``bin_dir``, default this venv) on a free loopback port with
    these ``serve`` overrides, on the MLflow store under ``state`` (default: the test's private
    one) unless ``env`` names another (``MLFLOW_TRACKING_URI``)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["serve"].update({"poll_seconds": 1, "max_upload_mb": 1, "max_megapixels": 2, **serve})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    port = free_port()
    state = state or tmp_path / "state"
    proc = subprocess.Popen(
        [str(bin_dir / "brighthouse") if bin_dir else "brighthouse", "serve", "--params",
         str(tmp_path / "params.yaml"), "--port", str(port)],
        cwd=tmp_path, env=tool_env(BRIGHTHOUSE_HOME=str(state), **(env or {})),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield Server(url, proc, state)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def server(tmp_path, params, mlflow_store):
    """Version 1 (x*0.5+0.25) registered as champion, served with a 1 s alias poll."""
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    yield from start_server(tmp_path, max_waiting=256)


@pytest.fixture
def busy_server(tmp_path, params, mlflow_store):
    """As ``server``, but admitting one 2-megapixel photo at a time, and none waiting."""
    register_affine(params, tmp_path / "v1", 0.5, 0.25)
    yield from start_server(tmp_path, max_inflight_megapixels=2, max_waiting=0)


__all__ = ["MlflowClient", "busy_server", "register_affine", "server"]
