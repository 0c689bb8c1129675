"""Helpers for tests that run the real pipeline in a project copy."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import tool_env


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=project, env=tool_env(), capture_output=True, text=True)


def registry(project: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{project / '.brighthouse' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def set_param(project: Path, section: str, key: tuple[str, ...], value) -> None:
    raw = yaml.safe_load((project / "params.yaml").read_text())
    node = raw[section]
    for k in key[:-1]:
        node = node[k]
    node[key[-1]] = value
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
