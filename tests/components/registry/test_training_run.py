"""Which MLflow run trained the weights in a train folder: run.json, or, on another clone that
pulled the weights from the DVC remote and shares the store, the run that logged them."""
import json

import mlflow
import pytest

from components.registry.tracking import MODEL_MD5_TAG, file_md5, get_or_create_experiment, training_run, use_tracking
from components.errors import StageFailed


def trained(folder, weights: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pth").write_bytes(weights)
    use_tracking()
    with mlflow.start_run(experiment_id=get_or_create_experiment("train")) as run:
        mlflow.set_tag(MODEL_MD5_TAG, file_md5(folder / "model.pth"))
    return run.info.run_id


def test_pulled_weights_find_the_run_that_logged_them(tmp_path, mlflow_store):
    trained(tmp_path / "other", b"weights a")
    run_id = trained(tmp_path / "here", b"weights b")
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "model.pth").write_bytes(b"weights b")  # as `dvc pull` leaves them: no run.json
    assert training_run(clone) == run_id
    assert json.loads((clone / "run.json").read_text())["run_id"] == run_id  # recorded, as a TrainRecord
    (clone / "run.json").write_text(json.dumps({"run_id": run_id}))  # as an earlier brighthouse wrote it
    assert training_run(clone) == run_id
    (clone / "run.json").write_text(json.dumps({"run": run_id}))  # a foreign file: the weights name their run
    assert training_run(clone) == run_id


def test_weights_no_run_logged_are_refused_by_name(tmp_path, mlflow_store):
    trained(tmp_path / "here", b"weights b")
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "model.pth").write_bytes(b"weights nobody trained here")
    with pytest.raises(StageFailed, match=r"stray/model.pth has no record of its MLflow run.*no run in the MLflow"):
        training_run(stray)
    assert not (stray / "run.json").exists()
