"""The fold models against their presets, as served, on the pairs they did not train on."""
import pytest
import torch

from components.config import InferenceSpec
from components.data.lmdb_read import iter_pairs
from components.evaluation.preset_check import network_vs_preset
from components.lmdb import run_lmdb
from components.model.curves_nafnet import CurvesNAFNet
from components.model.model_io import is_preset_only, save_checkpoint, scale_residual, switch_off_residual
from components.model.presets import fit_preset
from components.records import CheckpointView
from tests.conftest import lmdb_paths

SPEC = InferenceSpec(mode="global_view", working_size=64)
ARCH = {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}


def fold_model(fold_lmdb, path, noise: float):
    """A network over the preset of the fold's training pairs whose residual adds ``noise``-sized
    garbage (0: the preset itself)."""
    preset = fit_preset((lq, gt) for _, lq, gt in iter_pairs(fold_lmdb / "train_whole"))
    torch.manual_seed(0)
    model = CurvesNAFNet(preset=preset.model_dump(exclude={"loo_psnr"}), **ARCH)
    torch.nn.init.normal_(model.body.ending.weight, std=noise)
    save_checkpoint(path, model.state_dict(), ARCH, 32, CheckpointView(mode="global_view", working_size=64))
    return path


@pytest.fixture
def two_folds(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb.model_copy(update={"cross_validate_below": 60, "folds": 2}),
             lmdb_paths(pair_folder, tmp_path / "lmdb"))
    return [tmp_path / "lmdb" / "folds" / str(i) for i in range(2)]


def test_a_network_that_adds_noise_loses_to_its_preset_and_switched_off_is_that_preset(two_folds, tmp_path):
    models = [fold_model(d, tmp_path / f"{i}.pth", noise=0.2) for i, d in enumerate(two_folds)]
    check = network_vs_preset(models, two_folds, SPEC)
    held_out = sum(1 for d in two_folds for _ in iter_pairs(d / "val"))
    assert check.pairs == held_out == 12 and not check.network_wins and check.gain_db < -1

    for m in models:
        assert not is_preset_only(m)
        switch_off_residual(m)
        assert is_preset_only(m)
    off = network_vs_preset(models, two_folds, SPEC)
    assert off.network_psnr == pytest.approx(off.preset_psnr, abs=1e-6) == pytest.approx(check.preset_psnr, abs=1e-6)


def test_each_share_of_the_network_is_scored_as_the_model_scaled_to_it_would_serve(two_folds, tmp_path):
    models = [fold_model(d, tmp_path / f"{i}.pth", noise=0.02) for i, d in enumerate(two_folds)]
    check = network_vs_preset(models, two_folds, SPEC, scales=(0.5, 1.0))
    # the preset is always a candidate, and the scores at 0 and 1 are the preset's and the network's
    assert sorted(check.scaled_psnr) == [0.0, 0.5, 1.0]
    assert check.scaled_psnr[0.0] == check.preset_psnr and check.scaled_psnr[1.0] == check.network_psnr
    assert check.residual_scale == max(check.scaled_psnr, key=check.scaled_psnr.__getitem__)
    assert check.network_wins == (check.residual_scale > 0)
    # a blend of the two outputs stands for the model with its last layer scaled (the transfer is
    # linear in the edit): what the selection reads is what the scaled model serves, up to clipping
    # and 8-bit rounding (a tenth of a dB here, at 37 dB, where rounding weighs most)
    for m in models:
        scale_residual(m, 0.5)
    halved = network_vs_preset(models, two_folds, SPEC)
    assert halved.network_psnr == pytest.approx(check.scaled_psnr[0.5], abs=0.1)
    assert halved.preset_psnr == pytest.approx(check.preset_psnr, abs=1e-6)


def test_a_plain_network_has_no_residual_to_switch_off(tmp_path):
    from components.model.nafnet_arch import NAFNet

    path = tmp_path / "plain.pth"
    save_checkpoint(path, NAFNet(**ARCH).state_dict(), ARCH, 32, CheckpointView(mode="global_view", working_size=64))
    with pytest.raises(ValueError, match="no residual"):
        switch_off_residual(path)
    assert not is_preset_only(path)
