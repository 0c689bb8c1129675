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


def test_ema_clipping_colour_loss_and_bf16_autocast(pair_folder, params, tmp_path, mlflow_store):
    from mlflow import MlflowClient

    params = tiny(params)
    knobs = {"ema_decay": 0.9, "grad_clip": 0.5, "colour_weight": 2.0, "precision": "bf16"}
    cfg = params.train.model_copy(update=knobs)
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["train"]["ema_decay"] == 0.9
    assert opts["brighthouse"] == {"grad_clip": 0.5, "colour_weight": 2.0, "precision": "bf16", "channels_last": False}
    client = MlflowClient()
    assert len(client.get_metric_history(result["run_id"], "train/l_colour")) == 3
    assert client.get_run(result["run_id"]).data.tags["precision"] == "bf16"
    model = load_model(tmp_path / "train" / "model.pth")
    assert torch.isfinite(model(torch.rand(1, 3, 32, 32))).all()


def test_perceptual_loss_without_vgg_weights_fails_before_training(pair_folder, params, tmp_path, mlflow_store,
                                                                   monkeypatch):
    import pytest

    from components.stage import StageFailed

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    cfg = tiny(params).train.model_copy(update={"perceptual_weight": 0.1})
    with pytest.raises(StageFailed, match=r"vgg19-dcbb9e9d.pth in .*empty-torch-home/hub/checkpoints"):
        run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))


def test_chroma_loss_sees_colour_casts_not_exposure():
    from components.losses import ChromaLoss

    loss = ChromaLoss()
    grey = torch.rand(2, 1, 16, 16).repeat(1, 3, 1, 1)
    assert loss(grey, grey * 0.5).item() < 1e-6           # darker, same colour
    warm = grey * torch.tensor([1.1, 1.0, 0.8]).view(1, 3, 1, 1)
    assert loss(warm, grey).item() > 0.01                 # a cast
