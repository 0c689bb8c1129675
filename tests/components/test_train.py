import json

import torch
import yaml

from components.config import Params
from components.lmdb import run_lmdb
from tests.conftest import lmdb_paths
from components.model_io import load_model
from components.train import TrainPaths, run_train


def tiny(params: Params) -> Params:
    train = params.train.model_copy(update={
        "arch": params.train.arch.model_copy(update={"width": 8}),
        "iterations": 6, "batch_size": 2, "patch_size": 32, "log_every": 2, "device": "cpu"})
    return params.model_copy(update={"train": train})


def test_trains_through_basicsr_and_logs_to_mlflow(pair_folder, params, tmp_path, mlflow_store):
    from mlflow import MlflowClient

    params = tiny(params)
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = run_train(params.train, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))

    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["network_g"]["type"] == "NAFNet" and opts["network_g"]["width"] == 8
    assert opts["datasets"]["train"]["io_backend"]["type"] == "lmdb"
    assert json.loads((tmp_path / "train" / "run.json").read_text())["run_id"] == result["run_id"]

    client = MlflowClient()
    run = client.get_run(result["run_id"])
    assert run.data.params["train.iterations"] == "6"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/l_pix")] == [2, 4, 6]

    model = load_model(tmp_path / "train" / "model.pth")
    assert model(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20, 24)
    # training moved the zero-initialised residual scales away from zero
    assert any(b.beta.abs().sum() > 0 for enc in model.encoders for b in enc)


def test_patch_larger_than_training_images_fails_before_training(pair_folder, params, tmp_path, mlflow_store):
    import pytest

    from components.stage import StageFailed

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    big = tiny(params).train.model_copy(update={"patch_size": 90})  # fixture images are 80 px high
    with pytest.raises(StageFailed, match="smaller than train.patch_size=90"):
        run_train(big, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    assert not (tmp_path / "train" / "model.pth").exists()
