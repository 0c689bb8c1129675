"""Where MLflow lives: ``MLFLOW_TRACKING_URI`` if set, else a sqlite store in the repo.

The default keeps the database and the artifacts together under ``.brighthouse/`` (git-
ignored), so one machine needs no server. Nothing happens at import time: callers ask.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STATE_DIR_ENV = "BRIGHTHOUSE_HOME"
MODEL_MD5_TAG = "model_md5"  # on a training run: the md5 of the model.pth it wrote


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked (store unreadable or locked, server down): unlike "no
    such model" this says nothing about what the registry holds."""


@contextmanager
def registry_calls(doing: str) -> Iterator[None]:
    """MLflow calls whose every failure is the registry's, not an answer: re-raised as
    ``RegistryUnavailable`` naming the store, so a retry knows nothing was decided."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:  # a server down surfaces as either, after MLflow's retries
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise RegistryUnavailable(f"{doing}: the MLflow registry at {tracking_uri()} failed ({first}); "
                                  "retry once it answers") from exc


def state_dir() -> Path:
    """``BRIGHTHOUSE_HOME``, else ``.brighthouse`` in the checkout that holds the working folder
    (from any of its subfolders), else in the working folder (a serving box has no checkout)."""
    if os.environ.get(STATE_DIR_ENV):
        return Path(os.environ[STATE_DIR_ENV]).resolve()
    here = Path.cwd().resolve()
    return (checkout_root(here) or here) / ".brighthouse"


def checkout_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with the pipeline's ``dvc.yaml`` and ``params.yaml``."""
    for folder in (start, *start.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    return None


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


def store_uri() -> str:
    """The project's tracking and registry URI (a local store's folder created)."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def client() -> MlflowClient:
    """An ``MlflowClient`` bound to the project's store by its arguments: it depends on no
    process-wide setting, so it is right whatever ran before it."""
    from mlflow import MlflowClient

    uri = store_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def use_tracking() -> str:
    """Point MLflow's fluent API (``mlflow.start_run``, ``log_model``, ``download_artifacts``)
    at the project's store, which it reads from process-wide settings; returns the URI."""
    import mlflow

    uri = store_uri()
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


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """A nested dict as dotted keys (``train.arch.width``): how MLflow params and tags hold it."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def file_md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_run(train_dir: Path) -> str:
    """The MLflow run that trained ``train_dir/model.pth``: the one named in ``run.json``, or,
    without that record (weights pulled from a DVC remote on another clone that shares this
    store), the run that logged these very weights. DVC tracks the weights, not run.json, so
    both are checked: the run must be in this store and must have logged these weights.
    Otherwise (weights restored from DVC's cache after training elsewhere, a wiped
    ``.brighthouse/``) stages would fail late with "Run not found", or log one model's results
    to another's run."""
    from mlflow.exceptions import MlflowException

    from components.errors import StageFailed
    from components.records import TRAIN_RECORD, TrainRecord, read_record

    retrain = "retrain here with `dvc repro -f train`, or set MLFLOW_TRACKING_URI to the store it was trained in"
    record = train_dir / TRAIN_RECORD
    weights_md5 = file_md5(train_dir / "model.pth")
    try:
        run_id = read_record(TrainRecord, record).run_id
    except StageFailed as unreadable:  # missing, or from an older writer: the weights name their run
        return _run_that_logged(weights_md5, train_dir, f"{unreadable}; and no run in the MLflow store "
                                f"{tracking_uri()} logged these weights (md5 {weights_md5}): {retrain}")
    try:
        run = client().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise  # the store failed to answer: that says nothing about the run
        raise StageFailed(f"training run {run_id} (named in {record}) is not in the MLflow store "
                          f"{tracking_uri()}: {retrain}") from exc
    logged = run.data.tags.get(MODEL_MD5_TAG)
    if logged != weights_md5:
        raise StageFailed(f"{train_dir / 'model.pth'} is not the model training run {run_id} logged "
                          f"(md5 {logged}; restored from DVC's cache?): {retrain}")
    return run_id


def _run_that_logged(weights_md5: str, train_dir: Path, missing: str) -> str:
    """The training run, in any experiment, whose ``model_md5`` tag is these weights; recorded in
    ``run.json`` so later stages read it as if trained here."""
    from components.errors import StageFailed
    from components.records import TRAIN_RECORD, TrainRecord, write_record

    store = client()
    experiments = [e.experiment_id for e in store.search_experiments()]
    runs = store.search_runs(experiments, f"tags.{MODEL_MD5_TAG} = '{weights_md5}'", max_results=1,
                             order_by=["attributes.start_time ASC"]) if experiments else []
    if not runs:
        raise StageFailed(f"{train_dir / 'model.pth'} has no record of its MLflow run: {missing}")
    write_record(train_dir / TRAIN_RECORD, TrainRecord(run_id=runs[0].info.run_id))
    return runs[0].info.run_id
