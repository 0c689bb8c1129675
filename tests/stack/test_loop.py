"""The whole loop on the stack, as the README walks a team through it:

1. a delivery lands (``brighthouse data deliver``);
2. the retrain DAG runs through the scheduler on Celery workers (train on the ``gpu`` queue),
   pushes the data version and the run's outputs to the S3 remote, and registers into the
   MLflow server: the version's row is in PostgreSQL, its artifacts in the bucket. Halfway
   through training the ``gpu`` worker is killed (SIGKILL to its process group, as a preempted
   machine): Airflow fails the task when its heartbeats stop, retries it on the restarted
   worker, and training continues from its last resumable state;
3. ``brighthouse promote`` moves ``champion`` and two serving replicas, from a ``serve``-only
   install in a folder with no checkout, switch to it without failing a request;
4. a second clone pulls from the S3 remote, trains again without interruption, and gets the
   same weights (the same dvc.lock); ``dvc repro`` registers nothing twice.
"""
import io
import re
import signal
import subprocess
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from stack.services import stop
from stack.settings import StackSettings, secret_values
from tests.conftest import free_port
from tests.deliveries import build_delivery, quick_run_params
from tests.serving.conftest import wait_ready
from tests.stack.conftest import AirflowApi, service_logs

pytestmark = [pytest.mark.services, pytest.mark.slow]
PHOTO = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(PHOTO, "PNG")


def wait_for(what: str, check, timeout: float, stack, interval: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n" + service_logs(
        stack, "airflow-scheduler", "airflow-worker-default", "airflow-worker-gpu", "airflow-triggerer"))


def finished_run(api: AirflowApi) -> dict | None:
    runs = api.get("dags/retrain/dagRuns").get("dag_runs", [])
    return next((r for r in runs if r["state"] in ("success", "failed")), None)


@contextmanager
def replica(box: Path, venv: Path, registry_url: str):
    """``brighthouse serve`` from the serve-only venv, in a folder with no checkout: the tracking
    URI and a fast alias poll from the environment, nothing else."""
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(box), "MLFLOW_TRACKING_URI": registry_url,
           "BRIGHTHOUSE_SERVE_POLL_SECONDS": "1"}
    proc = subprocess.Popen([str(venv / "bin" / "brighthouse"), "serve", "--port", str(port)], cwd=box, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout=120)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def answered_by(url: str) -> str:
    reply = httpx.post(f"{url}/v1/enhance", content=PHOTO.getvalue(), timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.headers["x-model-version"]


def registry_rows(stack) -> list[tuple[str, int]]:
    import psycopg2

    s = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    with psycopg2.connect(host="127.0.0.1", port=s.ports["postgres"], user=s.db_user, password=s.db_password,
                          dbname="mlflow") as conn, conn.cursor() as cur:
        cur.execute("SELECT name, version FROM model_versions ORDER BY version")
        return [(name, int(version)) for name, version in cur.fetchall() if name == "brighthouse"]


def bucket_keys(stack, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"], aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="brighthouse", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_a_delivery_retrains_on_celery_through_a_killed_worker_registers_once_and_replicas_follow(
        stack, tmp_path, serve_only_venv):
    quick_run_params(stack.project)
    resumable_training(stack.project)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "quick params"],
                   cwd=stack.project, check=True)
    api = AirflowApi(stack)
    wait_for("the retrain DAG to be parsed", lambda: api.get("dags/retrain"), 180, stack)
    build_delivery(tmp_path / "batch", stack.project / "data" / "coffee_0_tar.jpg")
    started = time.monotonic()
    stack.run("brighthouse", "data", "deliver", str(tmp_path / "batch"))
    kill_the_training_worker(stack)
    run = wait_for("the retrain run to finish", lambda: finished_run(api), 900, stack, interval=5)
    tasks = {t["task_id"]: t for t in api.get(f"dags/retrain/dagRuns/{run['dag_run_id']}/taskInstances")
             .get("task_instances", [])}
    assert run["state"] == "success", {k: t["state"] for k, t in tasks.items()}
    print(f"\ndelivery to registered version through Celery, a killed worker included: "
          f"{time.monotonic() - started:.0f} s")
    assert tasks["train"]["queue"] == "gpu" and tasks["validate"]["queue"] == "default"
    assert tasks["train"]["try_number"] == 2
    resumed = re.search(r"resumed after iteration (\d+)", train_log(stack, run["dag_run_id"], attempt=2))
    assert resumed and 0 < int(resumed[1]) < 40, "the retry did not continue from a resumable state"
    print(f"the retry continued after iteration {resumed[1]} of 40")
    assert registry_rows(stack) == [("brighthouse", 1)]
    assert any(k.endswith("/model.onnx") for k in bucket_keys(stack, "mlflow/")), "the ONNX is not in the bucket"
    assert not (stack.project / ".brighthouse" / "mlflow.db").exists()
    assert not (stack.project / ".brighthouse" / "mlartifacts").exists()
    assert "in sync" in stack.run("dvc", "status", "--cloud").stdout  # data and outputs pushed
    warm_start_reads_the_version_through_the_server(stack)

    venv = serve_only_venv
    box = tmp_path / "serving-box"
    box.mkdir()
    with ExitStack() as replicas:
        urls = [replicas.enter_context(replica(box, venv, stack.env["MLFLOW_TRACKING_URI"])) for _ in range(2)]
        assert [answered_by(u) for u in urls] == ["1", "1"]
        failures, stop = follow_under_load(urls)
        second_version(stack)
        stack.run("brighthouse", "promote", "2")
        wait_for("both replicas to serve version 2", lambda: all(answered_by(u) == "2" for u in urls), 60, stack, 1)
        stop.set()
        assert failures == []
        models = [httpx.get(f"{u}/v1/model", timeout=10).text for u in urls]
    secrets = secret_values(StackSettings.model_validate_json((stack.folder / "stack.json").read_text()))
    assert not [s for s in secrets for m in models if s in m], "a credential is in /v1/model"
    assert not [s for s in secrets if s in mlflow_metadata(stack)], "a credential is in MLflow params or tags"
    reproduce_in_a_second_clone(stack, tmp_path / "clone")


def warm_start_reads_the_version_through_the_server(stack) -> None:
    """A delivery's fine-tune of version 1 (``train.start_from``) reads its record and its EMA
    weights from the MLflow server, the artifacts from the bucket, and checks their md5."""
    done = stack.run("python", "-c", (
        "from pathlib import Path\nfrom components.config import load_params\n"
        "from components.data.splits import SPLITS_FILE, read_splits\n"
        "from components.warm_start import resolve_start, weights_path\n"
        "cfg = load_params('params.yaml').train.model_copy(update={'start_from': '1'})\n"
        "start = resolve_start(cfg, read_splits(Path('artifacts/lmdb') / SPLITS_FILE))\n"
        "print(start.version, start.fine_tunes, weights_path(cfg).is_file(), start.reason)"))
    assert done.stdout.splitlines()[-1].startswith("1 1 True its weights (run "), done.stdout + done.stderr


def resumable_training(project: Path) -> None:
    """Long enough to be killed halfway, with a resumable state every 10 iterations."""
    import yaml

    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["train"].update({"iterations": 40, "checkpoint_every": 10})
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def kill_the_training_worker(stack) -> None:
    """Once training has written a resumable state, SIGKILL the ``gpu`` worker's whole process
    group (the worker, its task and the training under it), then restart what is not running,
    as a supervisor would (``make stack`` is idempotent)."""
    states = stack.project / ".brighthouse" / "train-states"
    wait_for("a resumable training state", lambda: list(states.glob("*.pth")), 600, stack, interval=0.5)
    assert stop(stack.folder, "airflow-worker-gpu", signal.SIGKILL, within_s=10)
    stack.run("python", "-m", "stack", "up", timeout=300)


def train_log(stack, run_id: str, attempt: int) -> str:
    logs = list((stack.folder / "airflow" / "logs").glob(f"dag_id=retrain/run_id={run_id}/task_id=train/attempt={attempt}.log"))
    assert logs, f"no log of the train task's attempt {attempt} under {stack.folder / 'airflow' / 'logs'}"
    return logs[0].read_text(errors="replace")


def follow_under_load(urls: list[str]) -> tuple[list[str], threading.Event]:
    """Requests to every replica until stopped; any answer but 200 is recorded."""
    failures: list[str] = []
    stop = threading.Event()

    def load(url: str) -> None:
        while not stop.is_set():
            reply = httpx.post(f"{url}/v1/enhance", content=PHOTO.getvalue(), timeout=60)
            if reply.status_code != 200:
                failures.append(f"{url}: {reply.status_code} {reply.text[:200]}")

    for url in urls:
        threading.Thread(target=load, args=(url,), daemon=True).start()
    return failures, stop


def second_version(stack) -> None:
    """Version 2: version 1's artifacts and record registered again, as a second passing model."""
    stack.run("python", "-c", (
        "from mlflow import MlflowClient\nc = MlflowClient()\nv = c.get_model_version('brighthouse', '1')\n"
        "c.create_model_version('brighthouse', v.source, v.run_id, tags=v.tags, description=v.description,\n"
        "                       model_id=v.model_id or v.source.removeprefix('models:/'))"))


def mlflow_metadata(stack) -> str:
    return stack.run("python", "-c", (
        "from mlflow import MlflowClient\nc = MlflowClient()\n"
        "runs = c.search_runs([e.experiment_id for e in c.search_experiments()])\n"
        "print([(r.data.params, r.data.tags) for r in runs])\n"
        "print([(v.tags, v.description) for v in c.search_model_versions(\"name='brighthouse'\")])")).stdout


def reproduce_in_a_second_clone(stack, clone: Path) -> None:
    """Another machine: a git clone, the stack's remote, ``dvc pull``, ``dvc repro``, and training
    again without interruption (``dvc repro --force train``): the same dvc.lock, so the
    interrupted training gave the same weights, and the registry still holds exactly the
    versions it had."""
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "retrained",
                    "data.dvc", "dvc.lock"], cwd=stack.project, check=True)
    subprocess.run(["git", "clone", "-q", str(stack.project), str(clone)], check=True)
    stack.run("dvc", "remote", "add", "--local", "--default", "stack", stack.env["BRIGHTHOUSE_DVC_REMOTE"], cwd=clone)
    stack.run("dvc", "pull", cwd=clone)
    stack.run("dvc", "repro", cwd=clone, timeout=900)  # the LMDB is rebuilt (not cached); the rest is pulled
    stack.run("dvc", "repro", "--force", "--single-item", "train", cwd=clone, timeout=900)
    assert (clone / "dvc.lock").read_text() == (stack.project / "dvc.lock").read_text()
    assert registry_rows(stack) == [("brighthouse", 1), ("brighthouse", 2)]
