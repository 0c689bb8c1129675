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


def training_run(train_dir: Path) -> str:
    """The MLflow run the train stage logged to (``run.json``). Checked first, because DVC can
    restore training outputs from its cache that were logged to another store (a wiped
    ``.brighthouse/``, a new clone): stages would otherwise fail late with "Run not found"."""
    import json

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from components.stage import StageFailed

    run_id = json.loads((train_dir / "run.json").read_text())["run_id"]
    try:
        MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise StageFailed(
            f"training run {run_id} (named in {train_dir / 'run.json'}) is not in the MLflow store "
            f"{tracking_uri()}: those training outputs were logged to another store (restored from DVC's "
            "cache?). Set MLFLOW_TRACKING_URI to that store, or retrain here with `dvc repro -f train`") from exc
    return run_id
