"""The stack's servers: MLflow (store in PostgreSQL, artifacts proxied to the S3 bucket, so
clients need no S3 keys) and Airflow on Celery (api-server, scheduler, dag-processor,
triggerer for the delivery watcher, and one worker per queue: ``default`` and ``gpu``)."""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

from stack.services import Service, current_log, log_file
from stack.settings import StackSettings, write_private
from stack.stores import broker_url, database_url, s3_endpoint

WORKER_QUEUES = ("default", "gpu")  # the retrain DAG sends `train` to `gpu`
AIRFLOW_DAEMONS = ("scheduler", "dag-processor", "triggerer")


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def mlflow_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.ports['mlflow']}"


# A registry that is down costs a bounded wait, not MLflow's default minutes of retries per call
# (7 retries, backoff factor 2, 120 s timeout): every client of the stack gets these.
MLFLOW_CLIENT_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
# A killed worker's task is failed (and retried) after a minute without heartbeats, not
# Airflow's default five; a task whose broker message was lost is queued again after five
# minutes, not ten.
AIRFLOW_FAULT_LIMITS = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
                        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300"}


# botocore (boto3, s3fs under DVC, MLflow's artifact store) retries each S3 call 3 times with
# backoff, not the legacy mode's 5; DVC's remote also gets connect and read timeouts (lifecycle).
S3_CLIENT_LIMITS = {"AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard"}


def s3_env(settings: StackSettings) -> dict[str, str]:
    """What boto3, s3fs (the DVC remote) and MLflow's server read to reach the bucket."""
    return {"AWS_ACCESS_KEY_ID": settings.s3_access_key, "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key,
            "AWS_ENDPOINT_URL_S3": s3_endpoint(settings), "AWS_DEFAULT_REGION": "us-east-1", **S3_CLIENT_LIMITS}


def mlflow_service(settings: StackSettings) -> Service:
    env = {**s3_env(settings),
           "MLFLOW_BACKEND_STORE_URI": database_url(settings, "mlflow"),
           "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{settings.bucket}/mlflow",
           "MLFLOW_S3_ENDPOINT_URL": s3_endpoint(settings),
           # the job runner costs 2 GB and 6 s of start-up, and nothing here submits jobs
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    argv = [_bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(settings.ports["mlflow"]),
            "--workers", "1"]
    return Service("mlflow", argv, lambda: http_ok(f"{mlflow_url(settings)}/health"), env=env,
                   ready_within_s=90)


def airflow_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.ports['airflow']}"


def airflow_env(folder: Path, project: Path, settings: StackSettings) -> dict[str, str]:
    home = folder / "airflow"
    passwords = home / "passwords.json"
    if not passwords.is_file():
        home.mkdir(parents=True, exist_ok=True)
        write_private(passwords, json.dumps({"admin": settings.airflow_admin_password}))
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__FERNET_KEY": settings.airflow_fernet_key,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url(settings)}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(settings, "airflow"),
        "AIRFLOW__CELERY__BROKER_URL": broker_url(settings),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url(settings, "airflow"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        **AIRFLOW_FAULT_LIMITS,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.ports["airflow"]),
        "AIRFLOW__API__SECRET_KEY": settings.airflow_api_secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.airflow_jwt_secret,
        "BRIGHTHOUSE_PROJECT_DIR": str(project),
        # the tasks' own clients: the registry, and the DVC remote for `dvc push`
        "MLFLOW_TRACKING_URI": mlflow_url(settings), **MLFLOW_CLIENT_LIMITS, **s3_env(settings),
        # the DVC stages launch torchrun and dvc by name: the venv's, whoever started the stack
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def airflow_health(settings: StackSettings) -> dict[str, str]:
    """Each Airflow component's status as the api-server sees its heartbeats ({} if it is down)."""
    try:
        with urllib.request.urlopen(f"{airflow_url(settings)}/api/v2/monitor/health", timeout=2) as reply:
            health = json.load(reply)
    except (urllib.error.URLError, OSError, ValueError):
        return {}
    return {name: (value or {}).get("status", "") for name, value in health.items()}


def _component_healthy(settings: StackSettings, component: str) -> bool:
    return airflow_health(settings).get(component.replace("-", "_")) == "healthy"


def airflow_services(folder: Path, env: dict[str, str], settings: StackSettings) -> list[Service]:
    airflow = _bin("airflow")
    services = [Service("airflow-api-server", [airflow, "api-server"], lambda: http_ok(
        f"{airflow_url(settings)}/api/v2/monitor/health"), env=env, ready_within_s=120)]
    for daemon in AIRFLOW_DAEMONS:
        extra = ["--skip-serve-logs"] if daemon == "triggerer" else []  # its log server binds every interface
        services.append(Service(f"airflow-{daemon}", [airflow, daemon, *extra],
                                partial(_component_healthy, settings, daemon), env=env,
                                ready_within_s=120))
    for queue in WORKER_QUEUES:
        name = f"airflow-worker-{queue}"
        argv = [airflow, "celery", "worker", "--queues", queue, "--concurrency", "1", "--skip-serve-logs",
                "--celery-hostname", f"{queue}@%h"]
        services.append(Service(name, argv, partial(_worker_ready, folder, name), env=env,
                                ready_within_s=120))
    return services


def _worker_ready(folder: Path, name: str) -> bool:
    """Celery says ``celery@host ready.`` once it consumes from the broker."""
    return " ready." in current_log(log_file(folder, name))
