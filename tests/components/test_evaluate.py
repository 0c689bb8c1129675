import pytest

from components.config import GateConfig
from components.evaluate import apply_gate, evaluate_model
from components.lmdb import run_lmdb
from tests.conftest import lmdb_paths


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


def test_gate_reasons_name_each_failed_floor():
    gate = GateConfig(min_psnr=25, min_ssim=0.9, min_psnr_gain_over_identity=1)
    summary = {"psnr": 24.0, "ssim": 0.8, "identity_psnr": 23.5}
    reasons = apply_gate(summary, gate)
    assert len(reasons) == 3 and "24.00 dB < floor 25" in reasons[0]
    assert apply_gate({"psnr": 30.0, "ssim": 0.95, "identity_psnr": 20.0}, gate) == []
