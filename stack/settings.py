"""The stack's ports and credentials: chosen once, kept in ``stack.json`` (mode 0600), reused.

Ports come from ``BRIGHTHOUSE_STACK_<SERVICE>_PORT`` when set, else from the kernel on the first
``make stack``; later starts reuse them, so a sourced env file stays right across restarts.
Credentials are generated per stack and live only in the stack's folder: never in the repo,
never in a log line or a process's arguments (services read them from their environment).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stack.services import free_port

PORTS = ("postgres", "redis", "s3", "mlflow", "airflow",
         "weed_master", "weed_master_grpc", "weed_volume", "weed_volume_grpc",
         "weed_filer", "weed_filer_grpc", "weed_s3_grpc")
SCHEMA_VERSION = 1


class StackSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    ports: dict[str, int]
    db_user: str = "brighthouse"
    db_password: str
    redis_password: str
    s3_access_key: str
    s3_secret_key: str
    bucket: str = "brighthouse"
    airflow_admin_password: str
    airflow_jwt_secret: str
    airflow_api_secret: str
    airflow_fernet_key: str


def _port(name: str) -> int:
    given = os.environ.get(f"BRIGHTHOUSE_STACK_{name.upper()}_PORT")
    return int(given) if given else free_port()


def _new_settings() -> StackSettings:
    return StackSettings(
        ports={name: _port(name) for name in PORTS},
        db_password=secrets.token_urlsafe(24),
        redis_password=secrets.token_urlsafe(24),
        s3_access_key="BH" + secrets.token_hex(9).upper(),
        s3_secret_key=secrets.token_urlsafe(30),
        airflow_admin_password=secrets.token_urlsafe(12),
        airflow_jwt_secret=secrets.token_urlsafe(32),
        airflow_api_secret=secrets.token_urlsafe(32),
        airflow_fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )


def settings_file(folder: Path) -> Path:
    return folder / "stack.json"


def load_or_create(folder: Path) -> StackSettings:
    """The stack's settings, created (ports picked, secrets generated) on its first start."""
    path = settings_file(folder)
    if path.is_file():
        try:
            return StackSettings.model_validate_json(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not a brighthouse stack's settings ({exc}); move it away to start a "
                             "new stack (its data folders would then be unusable)") from exc
    folder.mkdir(parents=True, exist_ok=True)
    settings = _new_settings()
    write_private(path, settings.model_dump_json(indent=2))
    return settings


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created so from the start (no world-readable moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def secret_values(settings: StackSettings) -> list[str]:
    """Every credential, for tests and log scrubbing to look for."""
    return [settings.db_password, settings.redis_password, settings.s3_secret_key,
            settings.airflow_admin_password, settings.airflow_jwt_secret, settings.airflow_api_secret,
            settings.airflow_fernet_key]


def dump_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
