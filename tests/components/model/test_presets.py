"""The baseline preset: fitted to the train pairs, chosen by leave-one-out among candidates."""
import numpy as np
import pytest
import torch

from components.model.curves_nafnet import CurvesNAFNet
from components.model.presets import KINDS, fit_preset, grey_world, match_histogram
from components.records import CheckpointView


def photos(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(rng.beta(2, 2, (48, 64, 3)) * rng.uniform(0.3, 1.0), 0, 1).astype(np.float32) for _ in range(n)]


def psnr(a, b) -> float:
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def test_a_fixed_edit_is_learned_as_curves():
    pairs = [(x, np.clip(x ** 0.6, 0, 1)) for x in photos(6)]
    preset = fit_preset(pairs[:5])
    assert preset.kind == "curves" and set(preset.loo_psnr) == set(KINDS)
    x, y = pairs[5]
    assert psnr(preset.apply(x), y) > 35


def test_edits_that_normalise_exposure_are_not_learned_as_one_curve():
    """Every target has the same look whatever the input's exposure: a histogram candidate,
    not one curve for all, is what the leave-one-out chooses."""
    rng = np.random.default_rng(1)
    base = [np.sort(rng.beta(2, 2, 48 * 64 * 3)).reshape(48, 64, 3).astype(np.float32) for _ in range(7)]
    pairs = [(np.clip(b * gain, 0, 1), b) for b, gain in zip(base, (0.3, 0.9, 0.5, 0.7, 0.4, 0.8, 0.6))]
    preset = fit_preset(pairs[:6])
    assert preset.kind != "curves" and preset.loo_psnr[preset.kind] > preset.loo_psnr["curves"] + 3
    x, y = pairs[6]
    assert psnr(preset.apply(x), y) > psnr(fit_preset(pairs[:6]).model_copy(update={"kind": "curves"}).apply(x), y)


def test_histogram_matching_lands_on_the_target_quantiles_and_grey_world_neutralises():
    x = photos(1)[0]
    target_q = np.tile(np.linspace(0.1, 0.9, 65), (3, 1))
    out = match_histogram(x, target_q)
    assert abs(float(np.median(out)) - 0.5) < 0.02 and out.min() >= 0.1 - 1e-6
    tinted = np.clip(x * np.array([1.0, 0.8, 0.6], np.float32), 0, 1)
    means = grey_world(tinted).reshape(-1, 3).mean(0)
    assert means.max() - means.min() < 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_the_network_prior_is_the_preset_as_the_gate_scores_it(kind):
    """The untrained model over a preset is that preset (the residual starts at zero), and its
    histogram matching uses the quantiles of the photo it is given."""
    pairs = [(x, np.clip(x / x.mean() * 0.5, 0, 1).astype(np.float32)) for x in photos(4, seed=3)]
    preset = fit_preset(pairs).model_copy(update={"kind": kind})
    model = CurvesNAFNet(preset=preset.model_dump(exclude={"loo_psnr"}), width=8, enc_blk_nums=[1],
                         middle_blk_num=1, dec_blk_nums=[1]).eval()
    x = photos(1, seed=9)[0]
    with torch.no_grad():
        out = model(torch.from_numpy(x.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
    # the network's curves interpolate between levels where the numpy preset rounds to one
    assert np.abs(out - preset.apply(x)).mean() < 3e-3


def test_a_model_over_a_histogram_preset_exports_and_reloads_as_it_trained(tmp_path):
    from components.model.onnx_export import export_onnx
    from components.inference.onnx_session import ort_runner
    from components.model.model_io import load_model, save_checkpoint

    preset = fit_preset([(x, x ** 0.5) for x in photos(3)]).model_copy(update={"kind": "grey_blend"})
    arch = {"width": 8, "enc_blk_nums": [1], "middle_blk_num": 1, "dec_blk_nums": [1]}
    model = CurvesNAFNet(preset=preset.model_dump(exclude={"loo_psnr"}), **arch)
    torch.nn.init.normal_(model.body.ending.weight, std=0.01)  # a trained residual, not zero
    save_checkpoint(tmp_path / "model.pth", model.state_dict(), arch, 64, CheckpointView(mode="global_view", working_size=96))
    loaded = load_model(tmp_path / "model.pth")
    assert loaded.kind == "grey_blend"
    export_onnx(loaded, tmp_path / "model.onnx", 18)
    x = np.random.default_rng(0).random((1, 3, 57, 83)).astype(np.float32)
    with torch.no_grad():
        reference = model.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(ort_runner(tmp_path / "model.onnx")(x) - reference).max() < 1e-4


def test_a_missing_or_foreign_preset_file_is_named(tmp_path):
    from components.model.presets import read_preset

    with pytest.raises(FileNotFoundError, match=r"preset.json: no fitted preset; run the train stage again"):
        read_preset(tmp_path / "preset.json")
    (tmp_path / "preset.json").write_text('{"kind": "sepia", "curves": [], "target_quantiles": []}')
    with pytest.raises(ValueError, match=r"preset.json is not a brighthouse preset"):
        read_preset(tmp_path / "preset.json")
