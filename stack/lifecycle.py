"""``make stack`` / ``make stack-down``: the team topology as plain processes on this machine.

Started in dependency order (stores, then MLflow and Airflow's schema, then Airflow), each
waited on by its health check; stopped in reverse. Idempotent: a healthy service is left
alone. ``stack-down`` keeps every data folder, so the next ``make stack`` finds every model
version, alias, data version and DAG run again.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stack import apps, stores
from stack.services import ServiceFailed, launch, run_once, running_pid, stop, wait_healthy
from stack.settings import StackSettings, load_or_create, write_private

STACK_DIR_ENV = "BRIGHTHOUSE_STACK_DIR"
DVC_REMOTE = "stack"
# a store that hangs costs a bounded wait per call (seconds), not botocore's 60 s each way
DVC_REMOTE_TIMEOUTS = {"connect_timeout": "10", "read_timeout": "60"}
START_ORDER = ("postgres", "redis", "s3", "mlflow", "airflow-api-server", "airflow-scheduler",
               "airflow-dag-processor", "airflow-triggerer", "airflow-worker-default", "airflow-worker-gpu")


@dataclass(frozen=True)
class Stack:
    project: Path
    folder: Path
    settings: StackSettings

    @property
    def env_file(self) -> Path:
        return self.folder / "env"


def stack_dir(project: Path) -> Path:
    return Path(os.environ.get(STACK_DIR_ENV, project / ".brighthouse" / "stack")).resolve()


def up(project: Path, folder: Path | None = None) -> Stack:
    project = project.resolve()
    folder = folder or stack_dir(project)
    settings = load_or_create(folder)
    stack = Stack(project, folder, settings)
    started = time.monotonic()
    stores_ = [stores.postgres_service(folder, settings), stores.redis_service(folder, settings),
               stores.object_store_service(folder, settings)]
    launched = {s.name: launch(s, folder) for s in stores_}
    wait_healthy(stores_[0], folder, launched["postgres"])
    stores.create_databases(settings)
    mlflow = apps.mlflow_service(settings)
    launched["mlflow"] = launch(mlflow, folder)
    env = apps.airflow_env(folder, project, settings)
    airflow = apps.airflow_services(folder, env, settings)
    if not all(running_pid(folder, s.name) for s in airflow):  # a running Airflow has its schema
        _migrate_airflow(env)
    wait_healthy(stores_[1], folder, launched["redis"])
    launched.update({s.name: launch(s, folder) for s in airflow})
    for service in [stores_[2], mlflow, *airflow]:
        wait_healthy(service, folder, launched[service.name])
    write_env_file(stack, env)
    use_dvc_remote(stack)
    print(f"stack ready in {time.monotonic() - started:.0f} s")
    return stack


def _migrate_airflow(env: dict[str, str]) -> None:
    airflow = str(Path(apps._bin("airflow")))
    run_once([airflow, "db", "migrate"], env, "airflow db migrate", timeout_s=300)
    run_once([airflow, "pools", "set", "gpu", "1", "one training at a time"], env, "airflow pools set gpu")


def down(project: Path, folder: Path | None = None) -> list[str]:
    """Stop every service, last started first; the data stays. Returns the names stopped."""
    project = project.resolve()
    folder = folder or stack_dir(project)
    signals = _stop_signals(folder)
    stopped = []
    for name in reversed(START_ORDER):
        sig, within = signals.get(name, (15, 30.0))
        if stop(folder, name, sig, within):
            stopped.append(name)
    forget_dvc_remote(project)
    return stopped


def _stop_signals(folder: Path) -> dict[str, tuple[int, float]]:
    import signal

    return {"postgres": (signal.SIGINT, 30.0), "s3": (signal.SIGTERM, 40.0)}


def status(folder: Path) -> dict[str, int | None]:
    return {name: running_pid(folder, name) for name in START_ORDER}


def client_env(stack: Stack, airflow_env: dict[str, str]) -> dict[str, str]:
    """What a shell on this machine needs to use the stack: the CLI, dvc, MLflow clients and
    serving (the tracking URI; artifacts go through the MLflow server), plus Airflow's own
    settings so that the ``airflow`` command talks to the stack's scheduler database."""
    return {"MLFLOW_TRACKING_URI": apps.mlflow_url(stack.settings), **apps.s3_env(stack.settings),
            "BRIGHTHOUSE_DVC_REMOTE": dvc_remote_url(stack.settings),
            **{k: v for k, v in airflow_env.items() if k not in ("PATH", "BRIGHTHOUSE_PROJECT_DIR")}}


def write_env_file(stack: Stack, airflow_env: dict[str, str]) -> None:
    lines = [f"# the brighthouse stack in {stack.folder}: `. {stack.env_file}` points this shell at it.",
             "# Generated credentials: keep this file private (mode 0600); never commit or paste it."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(client_env(stack, airflow_env).items())]
    write_private(stack.env_file, "\n".join(lines) + "\n")


def _dvc(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    dvc = str(Path(apps._bin("dvc")))
    return subprocess.run([dvc, *args], cwd=project, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def dvc_remote_url(settings: StackSettings) -> str:
    return f"s3://{settings.bucket}/dvc"


def use_dvc_remote(stack: Stack) -> None:
    """This checkout's default DVC remote becomes the stack's bucket (``.dvc/config.local``, not
    committed); its endpoint and keys come from the env file."""
    if not (stack.project / ".dvc").is_dir():
        return
    url = dvc_remote_url(stack.settings)
    done = _dvc(stack.project, "remote", "add", "--local", "--force", "--default", DVC_REMOTE, url)
    for option, seconds in DVC_REMOTE_TIMEOUTS.items():
        if done.returncode == 0:
            done = _dvc(stack.project, "remote", "modify", "--local", DVC_REMOTE, option, seconds)
    if done.returncode != 0:
        raise ServiceFailed(f"could not point DVC in {stack.project} at {url}: {done.stderr.strip()}")
    if (stack.project / "data.dvc").is_file():  # the bucket starts with this checkout's data version
        pushed = _dvc(stack.project, "push", "data.dvc", env=apps.s3_env(stack.settings))
        if pushed.returncode != 0:
            print(f"stack: this checkout's data version is not in {url} yet (`dvc push data.dvc` failed: "
                  f"{(pushed.stderr.strip().splitlines() or ['?'])[-1]}); `dvc pull -r sample data.dvc` then "
                  "`dvc push data.dvc` puts it there", file=sys.stderr)


def forget_dvc_remote(project: Path) -> None:
    """Back to the committed default remote once the stack is down (the bucket keeps the data)."""
    if (project / ".dvc" / "config.local").is_file():
        _dvc(project, "remote", "remove", "--local", DVC_REMOTE)


def describe(stack: Stack) -> str:
    s = stack.settings
    return "\n".join([
        f"MLflow UI        {apps.mlflow_url(s)}",
        f"Airflow UI       {apps.airflow_url(s)}  "
        f"(user admin, password in {stack.folder / 'airflow' / 'passwords.json'})",
        f"S3 endpoint      {stores.s3_endpoint(s)}  (bucket {s.bucket}: mlflow/ artifacts, dvc/ remote)",
        f"PostgreSQL       127.0.0.1:{s.ports['postgres']}  (databases mlflow, airflow)",
        f"Redis            127.0.0.1:{s.ports['redis']}",
        f"DVC remote       {DVC_REMOTE} (default for this checkout)",
        f"logs             {stack.folder}/<service>.log",
        f"use it:          . {stack.env_file}",
    ])
