"""The README's way: ``make airflow`` (airflow standalone), drop a delivery, a challenger appears.

Real scheduler, triggerer, dag-processor and API server in a project copy; the test stops every
process it started. Prints the event-to-run delay and the whole run's duration.
"""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import tool_env
from tests.deliveries import build_delivery, quick_run_params

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs(project, env) -> list[dict]:
    r = subprocess.run(["airflow", "dags", "list-runs", "retrain", "-o", "json"], cwd=project, env=env,
                       capture_output=True, text=True)
    rows = [line for line in r.stdout.splitlines() if line.startswith("[")]  # warnings share stdout
    return json.loads(rows[-1]) if r.returncode == 0 and rows else []


def wait_for(what, check, timeout, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; standalone log:\n{log.read_text()[-4000:]}")


def test_a_delivery_starts_a_run_that_registers_a_challenger(project_copy, tmp_path):
    quick_run_params(project_copy)
    env = tool_env()
    airflow_env = tool_env(AIRFLOW_HOME=str(project_copy / ".brighthouse" / "airflow"))
    log = tmp_path / "standalone.log"
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "-o", "install", "airflow", f"AIRFLOW_PORT={port}"], cwd=project_copy,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("the retrain DAG to be parsed", lambda: "retrain" in subprocess.run(
            ["airflow", "dags", "list", "-o", "plain"], cwd=project_copy, env=airflow_env,
            capture_output=True, text=True).stdout, 300, log)
        time.sleep(10)  # let the triggerer pick the watcher up, as a real deployment would have
        build_delivery(tmp_path / "batch", project_copy / "data" / "coffee_0_tar.jpg")
        started = time.monotonic()
        subprocess.run(["brighthouse", "data", "deliver", str(tmp_path / "batch")], cwd=project_copy, env=env,
                       check=True)
        [run] = wait_for("a run triggered by the delivery", lambda: runs(project_copy, airflow_env), 180, log)
        delay = time.monotonic() - started
        assert run["run_id"].startswith("asset_triggered__"), run
        done = wait_for("the run to finish", lambda: [r for r in runs(project_copy, airflow_env)
                                                      if r["state"] in ("success", "failed")], 900, log)
        total = time.monotonic() - started
        assert done[0]["state"] == "success", log.read_text()[-4000:]
        registered = json.loads((project_copy / "artifacts/register/registered.json").read_text())
        assert "challenger" in registered["aliases"]
        print(f"\nevent-to-run delay {delay:.0f} s; delivery to registered challenger {total:.0f} s")
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """TERM the whole process group (make, standalone and its children), then KILL stragglers."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
