import contextlib
import json

import numpy as np
import pytest

from components.config import GateConfig
from components.evaluate import EvaluatePaths, apply_gate, evaluate_model, fit_baseline, run_evaluate
from components.evaluation.metrics import ciede2000
from components.lmdb import run_lmdb
from components.model.baseline import apply_tone_curves, fit_tone_curves
from components.errors import StageFailed
from tests.conftest import fake_spec, fake_stage_outputs, lmdb_paths, make_affine_onnx


def test_identity_model_scores_like_the_identity_baseline_and_fails_the_gain_gate(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    result = evaluate_model(lambda b: b, tmp_path / "lmdb", params.evaluate)
    assert result["images"] == 2
    assert result["psnr"] == pytest.approx(result["identity_psnr"], abs=1e-4)
    assert not result["gate_passed"]
    assert any("gain over identity" in r for r in result["gate_reasons"])


def test_model_that_recovers_the_target_passes(pair_folder, params, tmp_path):
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    # fixture inputs are target * 0.6 (then rounded): dividing by 0.6 nearly restores them
    result = evaluate_model(lambda b: b / 0.6, tmp_path / "lmdb", params.evaluate)
    assert result["psnr"] > result["identity_psnr"] + 10 and result["gate_passed"], result["gate_reasons"]
    assert result["ciede2000_mean"] < 1.0
    # ... but this data's edit is purely global: tone curves fitted on train do it as well,
    # so with the classical baseline in the gate the same model is not worth registering.
    result = evaluate_model(lambda b: b / 0.6, tmp_path / "lmdb", params.evaluate, fit_baseline(tmp_path / "lmdb"))
    assert result["baseline_psnr"] > result["psnr"] and not result["gate_passed"]
    assert result["gate_reasons"][0].startswith("PSNR gain over the baseline preset (curves)")


def test_gate_reasons_name_each_failed_check():
    gate = GateConfig(min_psnr=25, min_ssim=0.9, min_psnr_gain_over_identity=1, min_psnr_gain_over_baseline=0.5,
                      max_ciede2000_mean=3, max_regression_vs_champion_db=0.1)
    summary = {"psnr": 24.0, "ssim": 0.8, "identity_psnr": 23.5, "baseline_psnr": 23.8, "ciede2000_mean": 4.0,
               "champion_psnr": 24.5, "champion_version": "3", "champion_pairs": 4, "psnr_on_champion_pairs": 24.3}
    reasons = apply_gate(summary, gate)
    assert len(reasons) == 6 and "24.00 dB < floor 25" in reasons[0]
    assert "baseline preset (curves) 0.20 dB" in reasons[3] and "CIEDE2000 4.00 > 3" in reasons[4]
    # against the champion, only the pairs it did not train on count, for both models
    assert "0.20 dB worse than champion v3 on the 4 pairs neither trained on" in reasons[5]
    good = {"psnr": 30.0, "ssim": 0.95, "identity_psnr": 20.0, "baseline_psnr": 28.0, "ciede2000_mean": 1.0,
            "champion_psnr": 30.05, "champion_version": "3", "champion_pairs": 9, "psnr_on_champion_pairs": 30.0}
    assert apply_gate(good, gate) == []


def test_the_preset_alone_is_not_asked_to_beat_itself_and_every_other_check_holds():
    """A version with no network (the fold models lost to their presets) is its preset: it scores
    a hair under the numpy preset through the transfer, which is no reason to refuse it."""
    gate = GateConfig(min_psnr=25, min_psnr_gain_over_baseline=0.0)
    preset = {"psnr": 26.0, "ssim": 0.9, "identity_psnr": 20.0, "baseline_psnr": 26.03, "ciede2000_mean": 4.0}
    assert apply_gate({**preset, "networks": 0}, gate) == []
    assert "baseline preset" in apply_gate({**preset, "networks": 1}, gate)[0]
    assert apply_gate({**preset, "networks": 0, "psnr": 24.0}, gate)[0].startswith("PSNR 24.00 dB < floor 25")


def test_tone_curves_undo_a_global_edit_but_not_a_local_one():
    rng = np.random.default_rng(0)
    gt = rng.random((64, 64, 3)).astype(np.float32)
    lq = (gt * np.array([0.5, 0.7, 0.9])) ** 1.2  # exposure, white balance, contrast
    curves = fit_tone_curves([(lq, gt)])
    assert np.abs(apply_tone_curves(lq, curves) - gt).mean() < 0.01
    assert (np.diff(curves, axis=1) >= 0).all()  # monotone


def test_ciede2000_sees_a_colour_cast_not_a_copy():
    img = np.random.default_rng(1).random((32, 32, 3)).astype(np.float32)
    assert ciede2000(img, img) == (0.0, 0.0)
    warm = np.clip(img * np.array([1.1, 1.0, 0.85]), 0, 1)
    mean, p95 = ciede2000(warm, img)
    assert 1.0 < mean < p95


def test_lpips_is_unavailable_not_zero_without_weights_and_real_with_them(tmp_path, monkeypatch):
    import torch
    import torchvision

    from components.evaluation.perceptual import ALEXNET_FILE, lpips_scorer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    score, why = lpips_scorer()
    assert score is None and why.startswith("unavailable") and ALEXNET_FILE in why
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)  # stand-in backbone: tests the loading path, not ImageNet features
    torch.save(torchvision.models.alexnet().state_dict(), checkpoints / ALEXNET_FILE)
    score, why = lpips_scorer()
    img = np.random.default_rng(2).random((64, 64, 3)).astype(np.float32)
    assert why == "" and score(img, img) == 0.0 and score(img, 1 - img) > 0


def test_stage_scores_the_exported_onnx_and_refuses_a_regression(pair_folder, params, tmp_path, mlflow_store):
    from components.register import RegisterPaths, run_register

    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    champion = fake_stage_outputs(tmp_path / "champ", 1 / 0.6, 0.0)  # near-perfect on this data
    run_register(params.register_, RegisterPaths(*(champion[k] for k in ("train", "evaluate", "export", "register", "lmdb"))))
    challenger = fake_stage_outputs(tmp_path / "new", 1 / 0.62, 0.0)  # good, but a bit worse
    make_affine_onnx(challenger["export"] / "model.onnx", 1 / 0.62, 0.0)
    out = tmp_path / "eval"
    with pytest.raises(Exception, match="worse than champion v1"):
        # affine stand-ins are not NAFNets: there is no other pooling to compare
        cfg = params.evaluate.model_copy(update={"compare_pooling": False, "inference": fake_spec()})
        run_evaluate(cfg, EvaluatePaths(tmp_path / "lmdb", challenger["train"], challenger["export"], out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["champion_version"] == "1" and metrics["champion_psnr"] > metrics["psnr"] + 0.1
    assert {"baseline_psnr", "ciede2000_mean", "ciede2000_p95"} <= set(metrics)
    assert metrics["lpips"].startswith("unavailable") or isinstance(metrics["lpips"], float)
    page = (out / "report.html").read_text()
    assert "worse than champion" in page and page.count("data:image/jpeg;base64,") == 3 * 2  # 2 val images


def test_what_dvc_tracks_is_byte_identical_on_a_second_evaluation_and_timings_go_apart(
        pair_folder, params, tmp_path, mlflow_store):
    """metrics.json and per_image.json are DVC outputs recorded in dvc.lock: the same model on the
    same data must give the same bytes, or every clone's `make demo` changes a tracked file.
    Seconds per megapixel are measured anew each time, so they live in timing.json and the report."""
    run_lmdb(params.lmdb, lmdb_paths(pair_folder, tmp_path / "lmdb"))
    model = fake_stage_outputs(tmp_path / "m", 1 / 0.6, 0.0)
    cfg = params.evaluate.model_copy(update={"compare_pooling": False, "inference": fake_spec()})
    tracked = {}
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        with contextlib.suppress(StageFailed):  # the verdict is not the point: outputs are written either way
            run_evaluate(cfg, EvaluatePaths(tmp_path / "lmdb", model["train"], model["export"], out))
        tracked[attempt] = [(out / name).read_bytes() for name in ("metrics.json", "per_image.json")]
        timing = json.loads((out / "timing.json").read_text())
        assert timing["seconds_per_mp"] > 0 and len(timing["per_image"]) == 2
        assert "seconds_per_mp" in (out / "report.html").read_text()
    assert tracked["a"] == tracked["b"]
    assert b"seconds" not in b"".join(tracked["a"])
