"""Where MLflow lives: ``MLFLOW_TRACKING_URI`` if set, else a sqlite store in the repo.

The default keeps the database and the artifacts together under ``.brighthouse/`` (git-
ignored), so one machine needs no server. Nothing happens at import time: callers ask.
"""
from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "BRIGHTHOUSE_HOME"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, Path.cwd() / ".brighthouse")).resolve()


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


def use_tracking() -> str:
    """Point the mlflow client at the project's store; returns the URI."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def get_or_create_experiment(name: str) -> str:
    """Experiment id; with a local sqlite store, artifacts go beside the database."""
    import mlflow

    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:///"):
        location = (state_dir() / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)
