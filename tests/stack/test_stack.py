"""``make stack`` is the team topology for real: idempotent, loopback only, nothing lost across
``make stack-down`` and a later ``make stack``, and no credential where it should not be."""
import json
import os
import stat
import subprocess
import uuid

import psutil
import pytest

from stack.lifecycle import START_ORDER
from stack.settings import StackSettings, secret_values
from tests.stack.conftest import make_stack, read_env_file

pytestmark = [pytest.mark.services, pytest.mark.slow]


def mlflow_script(body: str) -> str:
    return "import json, mlflow\nfrom mlflow import MlflowClient\nc = MlflowClient()\n" + body


def register_probe(stack, name: str) -> dict:
    """A run with an artifact, a registered version of it and an alias, through the server."""
    body = f"""
import tempfile, pathlib
mlflow.set_experiment("{name}")
with mlflow.start_run() as run:
    f = pathlib.Path(tempfile.mkdtemp()) / "weights.txt"
    f.write_text("{name}")
    mlflow.log_artifact(str(f))
c.create_registered_model("{name}")
v = c.create_model_version("{name}", f"runs:/{{run.info.run_id}}/weights.txt", run.info.run_id)
c.set_registered_model_alias("{name}", "champion", v.version)
print(json.dumps({{"run": run.info.run_id, "uri": run.info.artifact_uri}}))
"""
    return json.loads(stack.run("python", "-c", mlflow_script(body)).stdout.strip().splitlines()[-1])


def read_probe(stack, name: str, run_id: str) -> str:
    body = f"""
v = c.get_model_version_by_alias("{name}", "champion")
path = mlflow.artifacts.download_artifacts(run_id="{run_id}", artifact_path="weights.txt")
print(v.version, open(path).read())
"""
    return stack.run("python", "-c", mlflow_script(body)).stdout.strip().splitlines()[-1]


def listening_ports(folder) -> list[tuple[str, int]]:
    """Every (address, port) a process of the stack's process groups listens on."""
    groups = {int((folder / f"{name}.pid").read_text()) for name in START_ORDER}
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in groups:
                found += [(c.laddr.ip, c.laddr.port) for c in proc.net_connections("inet") if c.status == "LISTEN"]
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def test_make_stack_is_ready_in_time_on_loopback_only(stack):
    ports = listening_ports(stack.folder)
    assert ports, "no service of the stack is listening"
    assert {ip for ip, _ in ports} <= {"127.0.0.1"}, ports
    again, took = make_stack(stack.project, stack.env)
    assert again.returncode == 0, again.stderr[-3000:]
    env = read_env_file(stack.folder / "env")
    assert env == {k: stack.env[k] for k in env}
    print(f"make stack with everything up: {took:.1f} s")
    # every client's limits are bounded and named where a person looks: the env file, DVC's config
    assert {k: env.get(k) for k in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "AWS_MAX_ATTEMPTS",
                                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT")} == {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "AWS_MAX_ATTEMPTS": "3",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60"}
    assert [stack.run("dvc", "config", "--local", f"remote.stack.{k}").stdout.strip()
            for k in ("connect_timeout", "read_timeout")] == ["10", "60"]


def test_stack_down_and_up_keep_versions_aliases_artifacts_and_data(stack):
    name = f"persist-{uuid.uuid4().hex[:8]}"
    probe = register_probe(stack, name)
    assert probe["uri"].startswith("mlflow-artifacts:"), probe  # proxied: clients hold no S3 keys
    stack.run("dvc", "push", "data.dvc")
    down, _ = make_stack(stack.project, stack.env, "stack-down")
    assert down.returncode == 0 and "postgres" in down.stdout, down.stdout + down.stderr
    status = subprocess.run(["python", "-m", "stack", "status"], cwd=stack.project, env=stack.env,
                            capture_output=True, text=True).stdout
    assert "running" not in status, status
    up, took = make_stack(stack.project, stack.env)
    assert up.returncode == 0, up.stderr[-3000:]
    print(f"make stack after stack-down: {took:.1f} s")
    assert read_probe(stack, name, probe["run"]) == f"1 {name}"
    cloud = stack.run("dvc", "status", "--cloud", "data.dvc").stdout
    assert "in sync" in cloud, cloud


def test_credentials_stay_in_the_stack_folder(stack):
    settings = StackSettings.model_validate_json((stack.folder / "stack.json").read_text())
    secrets = secret_values(settings)
    for private in (stack.folder / "stack.json", stack.folder / "env"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    for log in stack.folder.glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], f"a credential is in {log}"
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=stack.project,
                             capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        path = stack.project / rel
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert not [s for s in secrets if s in path.read_text(errors="replace")], f"a credential is in {rel}"
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        assert not [s for s in secrets if s in line], f"a credential is in the arguments of pid {proc.pid}"


def test_a_wrong_s3_key_is_a_clear_error_naming_the_endpoint(stack, tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "a.txt").write_text("a pair, say")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    stack.run("dvc", "init", "-q", cwd=repo)
    stack.run("dvc", "remote", "add", "-d", "stack", f"{stack.env['BRIGHTHOUSE_DVC_REMOTE']}-{uuid.uuid4().hex[:6]}",
              cwd=repo)
    stack.run("dvc", "add", "-q", "data", cwd=repo)
    probe = ("from pathlib import Path\nfrom components.data.data_version import PushFailed, push_outputs\n"
             "try:\n    push_outputs(Path('.'))\nexcept PushFailed as exc:\n    print(exc)")
    wrong = stack.run("python", "-c", probe, cwd=repo, AWS_SECRET_ACCESS_KEY="not-the-key").stdout
    assert stack.env["AWS_ENDPOINT_URL_S3"] in wrong and "remote 'stack'" in wrong, wrong
    assert "Traceback" not in wrong and "not-the-key" not in wrong
    right = stack.run("python", "-c", probe, cwd=repo).stdout
    assert right == "", right
