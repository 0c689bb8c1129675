"""Faults on the stack, with the real services stopped: nothing registered twice, a clear error
naming what failed, a bounded wait."""
import signal
import subprocess
import time
import uuid

import pytest

from stack.apps import mlflow_service
from stack.services import start, stop
from stack.settings import StackSettings

pytestmark = [pytest.mark.services, pytest.mark.slow]

REGISTER = """
import sys
from pathlib import Path
from components.config import load_params
from components.register import RegisterPaths, main
from tests.conftest import fake_stage_outputs
root = Path(sys.argv[1])
if not (root / "train" / "run.json").exists():
    fake_stage_outputs(root, 0.5, 0.1)  # what train, export and evaluate left: a run in the server
    sys.exit(0)
dirs = {k: str(root / d) for k, d in (("train", "train"), ("evaluate", "evaluate"), ("export", "export"), ("out", "register"), ("lmdb", "lmdb"))}
sys.exit(main(["--params", sys.argv[2], *[a for k, v in dirs.items() for a in (f"--{k}", v)]]))
"""


def quick_params(tmp_path, name: str):
    import yaml

    from tests.conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["registry"]["model_name"] = name
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "params.yaml"


def versions(stack, name: str) -> int:
    probe = f"from mlflow import MlflowClient\nprint(len(MlflowClient().search_model_versions(\"name='{name}'\")))"
    return int(stack.run("python", "-c", probe).stdout.split()[-1])


def test_register_with_the_mlflow_server_down_fails_clearly_and_the_retry_registers_once(stack, tmp_path):
    from tests.conftest import REPO

    name = f"fault-{uuid.uuid4().hex[:8]}"
    argv = ["python", "-c", REGISTER, str(tmp_path / "stage"), str(quick_params(tmp_path, name))]
    stack.run(*argv, cwd=REPO)  # trained: the run is in the server; nothing registered yet
    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    stop(stack.folder, "mlflow")
    try:
        started = time.monotonic()
        down = stack.run(*argv, cwd=REPO, check=False)
        waited = time.monotonic() - started
    finally:
        start(mlflow_service(settings), stack.folder)
    said = down.stderr.strip().splitlines()[-1] if down.stderr.strip() else ""
    print(f"\nregister with the MLflow server down: exit {down.returncode} after {waited:.0f} s: {said}")
    assert down.returncode == 2 and "Traceback" not in down.stderr, down.stderr[-3000:]
    assert stack.env["MLFLOW_TRACKING_URI"] in said, said
    assert waited < 90  # MLflow's client limits from the env file, not its default minutes
    for _ in range(2):  # the retry registers; one more retry (as after a later crash) reuses it
        again = stack.run(*argv, cwd=REPO)
        assert '"version": "1"' in again.stdout, again.stdout
    assert versions(stack, name) == 1


def test_a_version_whose_artifacts_left_the_bucket_is_not_promoted(stack, tmp_path):
    import boto3

    from tests.conftest import REPO

    name = f"stale-{uuid.uuid4().hex[:8]}"
    params = quick_params(tmp_path, name)
    for run in ("v1", "v2"):  # two trained and registered versions; the first is champion
        for _ in range(2):  # prepare, then register
            stack.run("python", "-c", REGISTER, str(tmp_path / run), str(params), cwd=REPO)
    source = stack.run("python", "-c", "from mlflow import MlflowClient\n"
                       f"print(MlflowClient().get_model_version('{name}', '2').source)").stdout.split()[-1]
    model_id = source.removeprefix("models:/")
    s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                      aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="brighthouse", Prefix="mlflow/")
            for o in page.get("Contents", []) if f"/{model_id}/" in o["Key"]]
    assert any(k.endswith("model.onnx") for k in keys), keys
    for key in keys:
        s3.delete_object(Bucket="brighthouse", Key=key)
    refused = stack.run("brighthouse", "promote", "2", "--params", str(params), check=False)
    assert refused.returncode == 1 and "cannot be loaded" in refused.stderr and "refusing" in refused.stderr, \
        refused.stdout + refused.stderr
    champion = stack.run("python", "-c", "from mlflow import MlflowClient\n"
                         f"print(MlflowClient().get_registered_model('{name}').aliases['champion'])").stdout.split()[-1]
    assert champion == "1"


def test_a_data_version_pushed_while_the_object_store_is_down_stays_owed_and_is_paid_later(stack, tmp_path):
    """`brighthouse data add` with the S3 store stopped: the pairs are in data/, the version is
    owed (not lost), the error names the endpoint; with the store back, the next run pushes.
    In a checkout of its own, under its own bucket prefix: the other tests' data stay as they are."""
    from stack.stores import object_store_service
    from tests.conftest import make_project_copy, write_pair

    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    project = make_project_copy(tmp_path / "project")
    remote = f"{stack.env['BRIGHTHOUSE_DVC_REMOTE']}-{uuid.uuid4().hex[:6]}"
    stack.run("dvc", "remote", "add", "--local", "-d", "stack", remote, cwd=project)
    inbox = tmp_path / "delivery"
    for i in range(2):
        write_pair(inbox, f"s3down{i}", size=(640, 480), seed=40 + i)
    stop(stack.folder, "s3", within_s=40)
    try:
        down = stack.run("brighthouse", "data", "add", str(inbox), cwd=project, check=False)
    finally:
        start(object_store_service(stack.folder, settings), stack.folder)
    assert down.returncode == 1 and "Traceback" not in down.stderr, down.stderr[-3000:]
    assert stack.env["AWS_ENDPOINT_URL_S3"] in down.stderr and "stays owed" in down.stderr, down.stderr[-3000:]
    assert (project / "data" / "s3down0_src.png").is_file()
    assert (project / ".brighthouse" / "data-version-owed.json").is_file()
    again = stack.run("brighthouse", "data", "add", str(inbox), cwd=project)
    assert "finishing it" in again.stderr and "new data version" in again.stdout, again.stdout + again.stderr
    assert not (project / ".brighthouse" / "data-version-owed.json").exists()
    assert "in sync" in stack.run("dvc", "status", "--cloud", "data.dvc", cwd=project).stdout


def test_a_replica_keeps_serving_through_a_postgresql_restart_and_follows_a_later_promotion(stack, tmp_path):
    """PostgreSQL (the registry's database) stopped and started under a running replica: requests
    keep their answers from the loaded version, /readyz and /metrics show the problem while it
    lasts and clear by themselves, and a promotion made afterwards is served."""
    import io

    import httpx
    import numpy as np
    from PIL import Image

    from stack.stores import postgres_service
    from tests.conftest import REPO
    from tests.serving.conftest import start_server

    name = f"pg-{uuid.uuid4().hex[:8]}"
    params = quick_params(tmp_path, name)
    for run in ("v1", "v2"):  # v1 champion, v2 registered
        for _ in range(2):
            stack.run("python", "-c", REGISTER, str(tmp_path / run), str(params), cwd=REPO)
    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    env = {k: v for k, v in stack.env.items() if k.startswith("MLFLOW_")}
    box = tmp_path / "box"
    box.mkdir()
    gen = start_server(box, env={**env, "BRIGHTHOUSE_REGISTRY_MODEL_NAME": name})
    server = next(gen)
    buf = io.BytesIO()
    Image.fromarray(np.full((60, 80, 3), 128, np.uint8)).save(buf, "PNG")

    def served_by() -> str:
        reply = httpx.post(f"{server.base_url}/v1/enhance", content=buf.getvalue(), timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.headers["x-model-version"]

    def wait(what: str, check, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)

    def problem() -> str | None:
        return httpx.get(f"{server.base_url}/readyz", timeout=30).json().get("problem")

    try:
        assert served_by() == "1"
        stop(stack.folder, "postgres", stop_signal=signal.SIGINT)
        try:
            wait("/readyz to show the registry problem", lambda: problem() is not None)
            assert served_by() == "1"
            assert "brighthouse_registry_up 0.0" in httpx.get(f"{server.base_url}/metrics").text
        finally:
            start(postgres_service(stack.folder, settings), stack.folder)
            # Airflow's scheduler exits when its database goes away (a supervisor restarts it in
            # production); `make stack` is idempotent and starts what is not running
            stack.run("python", "-m", "stack", "up", timeout=300)
        wait("the registry problem to clear", lambda: problem() is None)
        stack.run("brighthouse", "promote", "2", "--params", str(params))
        wait("the replica to serve version 2", lambda: served_by() == "2")
    finally:
        gen.close()
    assert "Traceback" not in server.proc.stdout.read()


def test_a_task_queued_while_redis_restarts_still_runs(stack):
    """Redis, the Celery broker, restarted while a task waits in its queue (no worker consumes
    it): the broker's append-only file keeps the message, and the task runs once a worker is
    back. Airflow would queue it again after ``task_queued_timeout`` if the message were lost."""
    import redis

    from stack.stores import broker_url, redis_service
    from tests.stack.conftest import AirflowApi
    from tests.stack.test_loop import wait_for

    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    api = AirflowApi(stack)
    wait_for("champion_check to be parsed", lambda: api.get("dags/champion_check"), 180, stack)
    wait_for("no champion_check run in flight", lambda: not [  # its first scheduled run, if any
        r for r in api.get("dags/champion_check/dagRuns").get("dag_runs", [])
        if r["state"] not in ("success", "failed")], 180, stack, interval=2)
    stop(stack.folder, "airflow-worker-default")  # nobody takes the task off the queue
    try:
        run_id = api.post("dags/champion_check/dagRuns", {"logical_date": None})["dag_run_id"]
        tasks = f"dags/champion_check/dagRuns/{run_id}/taskInstances"
        wait_for("the first task to be queued", lambda: [
            t for t in api.get(tasks).get("task_instances", []) if t["state"] == "queued"], 120, stack, interval=1)
        # "queued" is set before the scheduler sends the message: restarting Redis in between
        # failed the send, not the broker (seen once). The message must be in the queue's list.
        broker = redis.Redis.from_url(broker_url(settings))
        with broker:
            wait_for("the task's message in Redis", lambda: broker.llen("default") > 0, 60, stack, interval=0.2)
        stop(stack.folder, "redis")
        start(redis_service(stack.folder, settings), stack.folder)
    finally:
        stack.run("python", "-m", "stack", "up", timeout=300)  # the worker back, and whatever the restart took down
    wait_for("the queued run to finish", lambda: api.get(f"dags/champion_check/dagRuns/{run_id}").get("state")
             in ("success", "failed"), 180, stack, interval=2)
    states = {t["task_id"]: (t["state"], t["try_number"]) for t in api.get(tasks).get("task_instances", [])}
    assert api.get(f"dags/champion_check/dagRuns/{run_id}")["state"] == "success", states
    assert states["champion"] == ("success", 1), states  # it ran (no champion yet: the run ends there)


def test_two_deliveries_at_once_are_serialised_and_neither_is_lost(stack, tmp_path):
    """Two `brighthouse data add` at the same moment in one project (the folder the data's
    machines share): the ingest lock (an flock, which the kernel's NFS client also honours
    across machines) serialises them, both pair sets are in the data version, and it is pushed."""
    from components.data.data_version import ingest_lock
    from tests.conftest import make_project_copy, write_pair

    project = make_project_copy(tmp_path / "project")
    stack.run("dvc", "remote", "add", "--local", "-d", "stack",
              f"{stack.env['BRIGHTHOUSE_DVC_REMOTE']}-{uuid.uuid4().hex[:6]}", cwd=project)
    deliveries = [tmp_path / "editor-a", tmp_path / "editor-b"]
    for n, inbox in enumerate(deliveries):
        for i in range(2):
            write_pair(inbox, f"at-once{n}{i}", size=(320, 240), seed=50 + 2 * n + i)
    with ingest_lock(project / ".brighthouse"):  # both start while the dataset is busy
        procs = [subprocess.Popen(["brighthouse", "data", "add", str(inbox)], cwd=project, env=stack.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for inbox in deliveries]
        for proc in procs:
            line = ""
            while "waiting" not in line:
                line = proc.stderr.readline()
                assert line or proc.poll() is None, "a data add ended without waiting for the lock"
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert all(f"at-once{n}{i}_src.png" in {p.name for p in (project / "data").iterdir()}
               for n in range(2) for i in range(2))
    assert not (project / ".brighthouse" / "data-version-owed.json").exists()
    assert "in sync" in stack.run("dvc", "status", "--cloud", "data.dvc", cwd=project).stdout
