"""One real stack per test session, started the README's way (``make stack`` in a fresh copy of
the project) and stopped with ``make stack-down``: PostgreSQL, Redis, SeaweedFS, the MLflow
server and Airflow on Celery, each in its own process group on loopback ports the kernel gave.
Tests isolate themselves by model name, experiment and bucket prefix."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_project_copy, tool_env

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class RunningStack:
    project: Path
    folder: Path
    env: dict[str, str]        # tool_env plus the stack's env file: what a user's shell has
    ready_s: float

    def run(self, *argv: str, cwd: Path | None = None, check: bool = True, timeout: float = 600,
            **extra: str) -> subprocess.CompletedProcess:
        done = subprocess.run(list(argv), cwd=cwd or self.project, env={**self.env, **extra},
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def stack_packages_missing() -> list[str]:
    missing = [] if shutil.which("redis-server") else ["redis-server"]
    if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
        missing.append("postgresql")
    return missing


def make_stack(project: Path, env: dict[str, str], target: str = "stack") -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(["make", "-o", "install", target], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    return done, time.monotonic() - started


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> RunningStack:
    missing = stack_packages_missing()
    if missing:
        message = f"the stack needs Debian's {' and '.join(missing)} (.ci/run installs them)"
        if os.environ.get("BRIGHTHOUSE_REQUIRE_STACK"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("stack")
    project = make_project_copy(root / "project")
    env = tool_env()
    done, took = make_stack(project, env)
    folder = project / ".brighthouse" / "stack"
    try:
        assert done.returncode == 0, f"make stack failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        print(f"\nmake stack: ready in {took:.0f} s\n{done.stdout}")
        yield RunningStack(project, folder, {**env, **read_env_file(folder / "env")}, took)
    finally:
        down, _ = make_stack(project, env, "stack-down")
        assert down.returncode == 0, down.stderr[-3000:]


class AirflowApi:
    """Airflow 3's REST API as the stack's admin (the generated password), token fetched once."""

    def __init__(self, stack: RunningStack) -> None:
        import httpx

        self.base = stack.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].removesuffix("/execution/")
        password = json.loads((stack.folder / "airflow" / "passwords.json").read_text())["admin"]
        reply = httpx.post(f"{self.base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        reply.raise_for_status()
        self.headers = {"Authorization": f"Bearer {reply.json()['access_token']}"}

    def get(self, path: str) -> dict:
        import httpx

        reply = httpx.get(f"{self.base}/api/v2/{path}", headers=self.headers, timeout=30)
        return reply.json() if reply.status_code == 200 else {}

    def post(self, path: str, body: dict) -> dict:
        import httpx

        reply = httpx.post(f"{self.base}/api/v2/{path}", headers=self.headers, json=body, timeout=30)
        assert reply.status_code in (200, 201), f"POST {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json()


def service_logs(stack: RunningStack, *names: str, lines: int = 40) -> str:
    return "\n".join(f"--- {name}.log\n" + "\n".join((stack.folder / f"{name}.log").read_text(errors="replace")
                                                      .splitlines()[-lines:]) for name in names)
