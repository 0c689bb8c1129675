"""A small set's fold models decide what ships: a network where they beat their presets, else the preset."""
import json

import numpy as np
import pytest
import torch

from components.lmdb import run_lmdb
from components.model.curves_nafnet import CurvesNAFNet
from components.model.model_io import is_preset_only, load_model
from components.records import NetworkVsPreset
from components.train import TrainPaths, run_train
from tests.components.test_train import tiny
from tests.conftest import in_mode, lmdb_paths

pytestmark = pytest.mark.slow


def verdict(monkeypatch, network_psnr: float, preset_psnr: float, scaled: dict | None = None) -> dict:
    """What the fold models scored against their presets (measured for real in test_preset_check);
    returns each fold model's last layer as trained, once they are checked."""
    import components.small_set

    trained: dict = {}

    def measured(models, folds, spec, scales):
        assert [m.parent.name for m in models] == [d.name for d in folds] and all(m.is_file() for m in models)
        trained.update({m.parent.name: ending(m) for m in models})
        return NetworkVsPreset(pairs=12, network_psnr=network_psnr, preset_psnr=preset_psnr, scaled_psnr=scaled or {})

    monkeypatch.setattr(components.small_set, "network_vs_preset", measured)
    return trained


def ending(path) -> torch.Tensor:
    return torch.load(path, map_location="cpu", weights_only=True)["params"]["body.ending.weight"]


@pytest.fixture
def small_set(pair_folder, params, tmp_path):
    """The sample's recipe (a network over the preset, global view) on 12 pairs in 2 folds."""
    params = tiny(params)
    cfg = in_mode(params.train, "global_view", working_size=96).model_copy(update={"tone_prior": True, "patch_size": 48})
    run_lmdb(params.lmdb.model_copy(update={"cross_validate_below": 60, "folds": 2}),
             lmdb_paths(pair_folder, tmp_path / "lmdb"))
    return cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train")


def test_fold_models_that_beat_their_presets_let_one_network_on_every_pair_ship(small_set, monkeypatch, mlflow_store):
    from mlflow import MlflowClient

    cfg, paths = small_set
    verdict(monkeypatch, 25.0, 24.5)
    result = run_train(cfg, paths)
    assert result.ships == "network" and result.network_vs_preset.gain_db == pytest.approx(0.5)
    assert json.loads((paths.out / "run.json").read_text())["network_vs_preset"]["network_psnr"] == 25.0
    assert not is_preset_only(paths.out / "model.pth")
    opts = (paths.out / "basicsr_options.yml").read_text()
    assert str(paths.lmdb / "train_whole") in opts and "folds" not in opts  # every pair
    client = MlflowClient()
    folds = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(r.data.tags["brighthouse.fold"] for r in folds) == ["0 of 2", "1 of 2"]


def test_fold_models_that_lose_to_their_presets_ship_the_preset_of_every_pair(small_set, monkeypatch, mlflow_store):
    from mlflow import MlflowClient

    from components.export import network_count
    cfg, paths = small_set
    verdict(monkeypatch, 24.0, 24.5)
    result = run_train(cfg, paths)
    assert result.ships == "preset" and not result.network_vs_preset.network_wins
    # the shipped model is the preset of every pair: its network's output is its prior
    model = load_model(paths.out / "model.pth")
    x = torch.rand(1, 3, 40, 56)
    assert isinstance(model, CurvesNAFNet) and torch.equal(model(x), model.prior(x))
    preset = json.loads((paths.out / "preset.json").read_text())
    assert np.allclose(model.curves.lut.numpy(), np.asarray(preset["curves"]), atol=1e-6)
    # the fold models are switched off too: the gate scores the fold presets as this model serves them
    assert all(is_preset_only(paths.out / "folds" / str(i) / "model.pth") for i in range(2))
    client = MlflowClient()
    assert "-0.50 dB" in client.get_run(result.run_id).data.tags["brighthouse.ships"]
    assert client.get_run(result.run_id).data.metrics["train/seconds"] > 0

    assert network_count(model, paths.out / "model.pth") == 0  # what export records, and the version says


def test_half_a_network_ships_where_half_scored_best_and_the_gate_scores_the_folds_at_half(
        small_set, monkeypatch, mlflow_store):
    from mlflow import MlflowClient

    from components.registry.tracking import MODEL_MD5_TAG, file_md5
    cfg, paths = small_set
    trained = verdict(monkeypatch, 24.4, 24.5, {0.0: 24.5, 0.5: 24.9, 1.0: 24.4})
    result = run_train(cfg.model_copy(update={"residual_scales": (0.0, 0.5, 1.0)}), paths)
    assert result.ships == "network" and result.network_vs_preset.residual_scale == 0.5
    for fold, weight in trained.items():  # scaled where the gate reads them
        assert torch.allclose(ending(paths.out / "folds" / fold / "model.pth"), 0.5 * weight)
    run = MlflowClient().get_run(result.run_id)
    # register finds the run by the md5 of the weights that ship: the scaled ones
    assert run.data.tags[MODEL_MD5_TAG] == file_md5(paths.out / "model.pth")
    assert run.data.tags["brighthouse.residual_scale"] == "0.5"
    assert "0.5 of its residual" in run.data.tags["brighthouse.ships"]
