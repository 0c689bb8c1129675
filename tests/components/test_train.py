import json

import pytest
import torch
import yaml

from components.config import Params
from components.lmdb import run_lmdb
from components.model.model_io import load_model
from components.train import TrainPaths, run_train
from tests.conftest import in_mode, lmdb_paths


def tiny(params: Params) -> Params:
    """The tiled recipe (the ``tiny`` profile's mode, no prior), small enough for a test."""
    train = in_mode(params.train, "tiled").model_copy(update={
        "tone_prior": False,
        "arch": params.train.arch.model_copy(update={"width": 8, "enc_blk_nums": (1, 1, 1, 1), "middle_blk_num": 1,
                                                     "dec_blk_nums": (1, 1, 1, 1)}),
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
    assert json.loads((tmp_path / "train" / "run.json").read_text())["run_id"] == result.run_id

    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.params["train.iterations"] == "6"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/l_pix")] == [2, 4, 6]

    model = load_model(tmp_path / "train" / "model.pth")
    assert model(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20, 24)
    # training moved the zero-initialised residual scales away from zero
    assert any(b.beta.abs().sum() > 0 for enc in model.encoders for b in enc)


def test_the_same_data_and_params_train_byte_identical_weights(pair_folder, params, tmp_path, mlflow_store):
    """DVC records model.pth's md5 in dvc.lock: a fresh clone's `make demo` on this machine must
    reproduce it, or it rewrites a tracked file. The run id differs and stays out of DVC."""
    from components.registry.tracking import file_md5, training_run

    params = tiny(params)
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    runs = [run_train(params.train, TrainPaths(tmp_path / "lmdb", tmp_path / name)) for name in ("a", "b")]
    assert file_md5(tmp_path / "a" / "model.pth") == file_md5(tmp_path / "b" / "model.pth")
    options = [(tmp_path / name / "basicsr_options.yml").read_text().replace(str(tmp_path / name), "OUT")
               for name in ("a", "b")]
    assert options[0] == options[1]  # dvc.yaml passes relative paths, so there the files are identical
    assert runs[0].run_id != runs[1].run_id
    assert [training_run(tmp_path / name) for name in ("a", "b")] == [r.run_id for r in runs]


def test_patch_larger_than_training_images_fails_before_training(pair_folder, params, tmp_path, mlflow_store):
    import pytest

    from components.errors import StageFailed

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    big = tiny(params).train.model_copy(update={"patch_size": 90})  # fixture images are 80 px high
    with pytest.raises(StageFailed, match=r"smaller than the 90 px patch \(train.patch_size"):
        run_train(big, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    assert not (tmp_path / "train" / "model.pth").exists()


def test_ema_clipping_colour_and_look_losses_and_bf16_autocast(pair_folder, params, tmp_path, mlflow_store):
    from mlflow import MlflowClient

    params = tiny(params)
    knobs = {"ema_decay": 0.9, "grad_clip": 0.5, "colour_weight": 2.0, "look_weight": 0.5, "precision": "bf16"}
    cfg = params.train.model_copy(update=knobs)
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["train"]["ema_decay"] == 0.9
    assert opts["brighthouse"] == {"grad_clip": 0.5, "colour_weight": 2.0, "look_weight": 0.5, "precision": "bf16",
                                   "channels_last": True}  # NHWC on CPU too
    client = MlflowClient()
    assert len(client.get_metric_history(result.run_id, "train/l_colour")) == 3
    assert len(client.get_metric_history(result.run_id, "train/l_look")) == 3
    assert client.get_run(result.run_id).data.tags["precision"] == "bf16"
    model = load_model(tmp_path / "train" / "model.pth")
    assert torch.isfinite(model(torch.rand(1, 3, 32, 32))).all()


def test_perceptual_loss_without_vgg_weights_fails_before_training(pair_folder, params, tmp_path, mlflow_store,
                                                                   monkeypatch):
    import pytest

    from components.errors import StageFailed

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    cfg = tiny(params).train.model_copy(update={"perceptual_weight": 0.1})
    with pytest.raises(StageFailed, match=r"vgg19-dcbb9e9d.pth in .*empty-torch-home/hub/checkpoints"):
        run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))


def test_chroma_loss_sees_colour_casts_not_exposure():
    from components.model.losses import ChromaLoss

    loss = ChromaLoss()
    grey = torch.rand(2, 1, 16, 16).repeat(1, 3, 1, 1)
    assert loss(grey, grey * 0.5).item() < 1e-6           # darker, same colour
    warm = grey * torch.tensor([1.1, 1.0, 0.8]).view(1, 3, 1, 1)
    assert loss(warm, grey).item() > 0.01                 # a cast


def test_look_loss_sees_washed_out_contrast_that_pixels_average_away():
    from components.model.losses import LookLoss

    loss = LookLoss()
    target = torch.rand(2, 3, 24, 24)
    assert loss(target, target).item() == 0.0
    shuffled = target.flatten(2)[..., torch.randperm(24 * 24)].view_as(target)
    assert loss(shuffled, target).item() < 1e-6               # same look, other pixels: no cost
    washed = 0.25 + 0.5 * target                              # grey blacks, dim whites
    assert loss(washed, target).item() > 0.05
    # the pixel loss cannot tell the washed-out edit from a noisy but faithful one; the look loss can
    noisy = (target + 0.125 * torch.randn_like(target)).clamp(0, 1)
    assert loss(washed, target) > 3 * loss(noisy, target)


def test_progress_validation_triptychs_and_final_checkpoint_in_mlflow(pair_folder, params, tmp_path,
                                                                      mlflow_store, caplog):
    import logging

    from mlflow import MlflowClient

    params = tiny(params)
    cfg = params.train.model_copy(update={"val_every": 3, "val_images": 1})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    with caplog.at_level(logging.INFO, logger="components"):
        result = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    assert any("iter 4/6 (66%)" in r.message and "it/s, ETA 0:00:" in r.message for r in caplog.records)
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(result.run_id, "train_val/psnr")] == [3, 6]
    images = [f.path for f in client.list_artifacts(result.run_id, "images")]
    assert len([p for p in images if p.endswith(".png")]) == 2, images  # one triptych per validation
    assert [f.path for f in client.list_artifacts(result.run_id, "checkpoint")] == ["checkpoint/model.pth"]


def _weights(path):
    return torch.load(path, weights_only=True)["params"]


def test_an_interrupted_run_resumes_to_the_same_weights(pair_folder, params, tmp_path, mlflow_store, monkeypatch):
    import pytest

    from components.model import basicsr_adapter
    from components.registry.tracking import state_dir

    params = tiny(params)
    cfg = params.train.model_copy(update={"iterations": 8, "checkpoint_every": 3, "ema_decay": 0.9})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    straight = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "straight"))
    assert straight.resumed_after == 0 and not list((state_dir() / "train-states").glob("*.pth"))

    real_step = basicsr_adapter.TrainingStep.__call__

    def crash_at_5(self, it):
        if it == 5:
            raise KeyboardInterrupt("power cut")
        real_step(self, it)

    monkeypatch.setattr(basicsr_adapter.TrainingStep, "__call__", crash_at_5)
    with pytest.raises(KeyboardInterrupt):
        run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "interrupted"))
    assert len(list((state_dir() / "train-states").glob("*.pth"))) == 1
    monkeypatch.setattr(basicsr_adapter.TrainingStep, "__call__", real_step)
    resumed = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "interrupted"))

    assert resumed.resumed_after == 3 and resumed.run_id != straight.run_id
    a, b = _weights(tmp_path / "straight" / "model.pth"), _weights(tmp_path / "interrupted" / "model.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((state_dir() / "train-states").glob("*.pth"))  # finished: the state is cleared
    from mlflow import (
        MlflowClient,  # the resumed run continued the interrupted run's MLflow run
    )

    runs = MlflowClient().search_runs([MlflowClient().get_run(straight.run_id).info.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}


def test_starts_from_a_pretrained_checkpoint_whose_head_differs(pair_folder, params, tmp_path, mlflow_store):
    from components.model.nafnet_arch import NAFNet

    params = tiny(params)
    arch = params.train.arch.model_dump(mode="json")
    torch.manual_seed(3)
    donor = NAFNet(**arch).state_dict()
    for k in donor:
        donor[k] = torch.randn_like(donor[k]) * 0.01
    donor["ending.weight"] = torch.zeros(4, 8, 3, 3)  # a head for another output: must be skipped
    torch.save({"params": donor}, tmp_path / "pretrained.pth")
    cfg = params.train.model_copy(update={"pretrained": str(tmp_path / "pretrained.pth"), "iterations": 1,
                                          "lr": 1e-9, "eta_min": 1e-10})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))
    trained = _weights(tmp_path / "train" / "model.pth")
    assert torch.allclose(trained["intro.weight"], donor["intro.weight"], atol=1e-6)
    assert trained["ending.weight"].shape == (3, 8, 3, 3)


def test_a_missing_pretrained_checkpoint_fails_before_training(pair_folder, params, tmp_path, mlflow_store):
    import pytest

    from components.errors import StageFailed

    cfg = tiny(params).train.model_copy(update={"pretrained": str(tmp_path / "nope.pth")})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    with pytest.raises(StageFailed, match="nope.pth does not exist"):
        run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))


def test_global_view_trains_on_whole_photos_over_fitted_preset(pair_folder, params, tmp_path, mlflow_store):
    from components.model.model_io import checkpoint_view
    from components.model.presets import KINDS, read_preset

    params = tiny(params)
    cfg = in_mode(params.train, "global_view", working_size=96).model_copy(update={
        "tone_prior": True, "out_of_sample_prior": False, "patch_size": 48, "exposure_stops": 0.3,
        "white_balance": 0.05})  # (over each pair's out-of-sample preset: tests/components/model/test_out_of_sample.py)
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))

    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["datasets"]["train"]["type"] == "WholePhotoDataset"
    assert opts["datasets"]["train"]["dataroot_gt"].endswith("train_whole/gt.lmdb")
    preset = read_preset(tmp_path / "train" / "preset.json")  # the gate's baseline, the network's prior
    assert opts["network_g"]["type"] == "CurvesNAFNet" and opts["network_g"]["preset"]["kind"] == preset.kind
    assert len(opts["network_g"]["preset"]["curves"]) == 3 and set(preset.loo_psnr) == set(KINDS)
    assert checkpoint_view(tmp_path / "train" / "model.pth").model_dump() == {"mode": "global_view", "working_size": 96}
    model = load_model(tmp_path / "train" / "model.pth")
    assert model.kind == preset.kind
    # the fixture's inputs are 0.6 x their targets: the fitted curves brighten
    assert model.curves.lut[:, 128].min() > 0.6
    assert model(torch.rand(1, 3, 21, 30)).shape == (1, 3, 21, 30)


def test_global_view_refuses_an_lmdb_without_whole_photos(pair_folder, params, tmp_path, mlflow_store):
    import shutil

    import pytest

    from components.errors import StageFailed

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    shutil.rmtree(tmp_path / "lmdb" / "train_whole")  # an LMDB written before the mode existed
    cfg = in_mode(tiny(params).train, "global_view")
    with pytest.raises(StageFailed, match="dvc repro lmdb"):
        run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))


@pytest.mark.slow
def test_a_small_set_trains_one_model_per_fold_and_ships_them_as_one(pair_folder, params, tmp_path, mlflow_store,
                                                                     monkeypatch):
    """Cross-validation: fold i's model learns from the other folds only, and the k models (2 here:
    CI pays for each) are one checkpoint whose output is their mean; export writes each as ONNX, and the whole."""
    from mlflow import MlflowClient

    from components.export import ExportPaths, run_export
    from components.model.ensemble import Ensemble
    from components.model.model_io import checkpoint_view
    from tests.components.test_small_set import verdict

    verdict(monkeypatch, 25.0, 24.5)  # the fold models beat their presets (test_small_set: when they do not)
    params = tiny(params)
    cfg = in_mode(params.train, "global_view", working_size=96).model_copy(update={
        "tone_prior": True, "patch_size": 48, "ships": "ensemble"})
    run_lmdb(params.lmdb.model_copy(update={"cross_validate_below": 60, "folds": 2}), lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))

    for i in range(2):
        opts = yaml.safe_load((tmp_path / "train" / "folds" / str(i) / "basicsr_options.yml").read_text())
        assert opts["datasets"]["train"]["dataroot_gt"] == str(tmp_path / "lmdb" / "folds" / str(i) / "train_whole" / "gt.lmdb")
        assert (tmp_path / "train" / "folds" / str(i) / "preset.json").is_file()
    model = load_model(tmp_path / "train" / "model.pth")
    members = [load_model(tmp_path / "train" / "folds" / str(i) / "model.pth") for i in range(2)]
    assert isinstance(model, Ensemble) and len(model.members) == 2
    x = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        assert torch.allclose(model(x), sum(m(x) for m in members) / 2, atol=1e-6)
    assert checkpoint_view(tmp_path / "train" / "model.pth").model_dump() == {"mode": "global_view", "working_size": 96}
    # one MLflow run for the ensemble, the folds' runs under it
    client = MlflowClient()
    assert len(result.members) == 2 and client.get_run(result.run_id).data.metrics["train/seconds"] > 0
    assert {client.get_run(r).data.tags["mlflow.parentRunId"] for r in result.members} == {result.run_id}

    export = run_export(params.export, ExportPaths(tmp_path / "train", tmp_path / "lmdb", tmp_path / "export"))
    assert export.members == [f"folds/{i}/model.onnx" for i in range(2)]
    assert max(export.max_abs_diff.values()) < params.export.atol  # the ensemble, each member, the composite
    assert {"composite", "fold1_real"} <= set(export.max_abs_diff)
