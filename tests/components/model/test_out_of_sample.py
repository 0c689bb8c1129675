"""Training each pair over the preset fitted without it (``train.out_of_sample_prior``)."""
import numpy as np
import torch
import yaml

from components.data.lmdb_read import iter_pairs
from components.lmdb import run_lmdb
from components.model.model_io import load_model
from components.model.out_of_sample import HeldOutPriorDataset, priors_file
from components.model.presets import apply_preset, fit_preset, leave_one_out_priors, read_preset
from components.train import TrainPaths, run_train
from tests.components.test_train import tiny
from tests.conftest import in_mode, lmdb_paths


def test_each_pairs_prior_is_the_preset_fitted_on_the_others(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    pairs = [(lq, gt) for _, lq, gt in iter_pairs(tmp_path / "lmdb" / "train_whole")]
    pairs[0] = (pairs[0][0], 1 - pairs[0][1])  # one edit unlike the others: its own fit would show
    priors = leave_one_out_priors(pairs, "blend")
    for i in (0, len(pairs) - 1):
        others = fit_preset(pairs[:i] + pairs[i + 1:])
        assert np.allclose(priors[i][0], others.curves, atol=1e-5)
        assert np.allclose(priors[i][1], others.target_quantiles, atol=1e-5)
    every_pair = fit_preset(pairs)
    assert not np.allclose(priors[0][0], every_pair.curves, atol=1e-2)


def test_the_dataset_feeds_each_input_through_its_own_pairs_prior(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    root = tmp_path / "lmdb" / "train_whole"
    opt = {"dataroot_lq": root / "lq.lmdb", "dataroot_gt": root / "gt.lmdb", "gt_size": 48, "min_crop": 1.0,
           "exposure_stops": 0.0, "white_balance": 0.0}
    with priors_file(tmp_path / "lmdb", "curves") as path:
        dataset = HeldOutPriorDataset({**opt, "out_of_sample_priors": str(path)})
        kind, priors = dataset.priors
    assert not path.exists() and kind == "curves"  # temporary: it lives while the training does
    key = dataset.pairs.keys[0]
    curves, quantiles = priors[key]
    lq, _ = dataset.pairs.read(key)
    expected = apply_preset("curves", lq.astype(np.float32) / 255, curves, quantiles)
    held_out = dataset[0]["lq"]  # the whole photo (min_crop 1), maybe flipped, on the canvas
    dataset.input_of = lambda key, lq: lq  # type: ignore[method-assign]  # the plain whole-photo dataset's
    plain = dataset[0]["lq"]
    assert abs(float(held_out.mean()) - float(expected.mean())) < 0.02
    assert abs(float(plain.mean()) - float(lq.mean() / 255)) < 0.02 < abs(float(held_out.mean()) - float(plain.mean()))

def test_a_model_trained_out_of_sample_is_saved_over_the_preset_of_every_pair(pair_folder, params, tmp_path,
                                                                              mlflow_store):
    params = tiny(params)
    cfg = in_mode(params.train, "global_view", working_size=96).model_copy(update={
        "tone_prior": True, "out_of_sample_prior": True, "patch_size": 48, "val_every": 6, "val_images": 1})
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    run_train(cfg, TrainPaths(tmp_path / "lmdb", tmp_path / "train"))

    opts = yaml.safe_load((tmp_path / "train" / "basicsr_options.yml").read_text())
    assert opts["network_g"]["preset"]["curves"] is None  # it trained over the identity...
    assert opts["datasets"]["train"]["type"] == "HeldOutPriorDataset"
    assert "out_of_sample_priors" not in opts["datasets"]["train"]  # (a temporary file: not in what DVC tracks)
    preset = read_preset(tmp_path / "train" / "preset.json")
    model = load_model(tmp_path / "train" / "model.pth")  # ...and is served over the preset of every pair
    assert model.kind == preset.kind
    assert torch.allclose(model.curves.lut, torch.tensor(preset.curves, dtype=torch.float32), atol=1e-6)
