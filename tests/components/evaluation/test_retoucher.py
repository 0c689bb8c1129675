"""What a retoucher checks: blown highlights, contrast and colour cast, each against the target."""
import numpy as np

from components.config import GateConfig
from components.evaluate import apply_gate
from components.evaluation.retoucher import TargetLook, blown_highlights


def room(seed: int = 0) -> np.ndarray:
    """A synthetic room: a near-white wall over the top half, varied furniture below, a window."""
    rng = np.random.default_rng(seed)
    img = np.empty((120, 180, 3), np.float32)
    img[:60] = 0.86 + rng.normal(0, 0.01, (60, 180, 1))            # white wall, a little texture
    img[60:] = rng.uniform(0.05, 0.7, (60, 180, 3))                # furniture, floor
    img[10:40, 20:60] = [0.75, 0.85, 0.95]                          # the pulled window: sky, kept
    return np.clip(img, 0, 1)


def test_a_window_blown_to_white_counts_but_a_target_that_clips_too_does_not():
    target = room()
    out = target.copy()
    out[10:40, 20:60] = 1.0
    assert blown_highlights(out, target) == (30 * 40) / (120 * 180)
    target[10:40, 20:60] = 1.0  # the retoucher let it clip: not the model's fault
    assert blown_highlights(out, target) == 0.0


def test_a_washed_out_edit_loses_contrast_and_a_pink_wall_is_a_cast():
    target = room()
    look = TargetLook(target)
    same = look.checks(target)
    assert same == {"blown_highlights": 0.0, "contrast_error": 0.0, "cast": 0.0}
    washed = look.checks(0.25 + 0.5 * target)  # grey blacks, dim whites
    assert washed["contrast_error"] > 20
    pink = target * np.array([1.0, 0.93, 0.97], np.float32)
    tinted = look.checks(pink, "model_")
    assert tinted["model_cast"] > 3 and tinted["model_contrast_error"] < 5


def test_a_photo_without_near_white_surfaces_has_no_cast_to_measure():
    target = room()
    target[:60] = [0.2, 0.5, 0.3]  # a green wall
    assert TargetLook(target).checks(target * np.array([1.0, 0.9, 1.0], np.float32))["cast"] == 0.0


def test_the_gate_sends_back_flat_contrast_a_cast_and_blown_windows():
    gate = GateConfig(min_psnr=0, min_ssim=0, min_psnr_gain_over_identity=0)
    good = {"psnr": 25.0, "ssim": 0.9, "identity_psnr": 15.0, "blown_highlights": 0.0002, "contrast_error": 4.0,
            "identity_contrast_error": 10.0, "cast": 1.0, "baseline_cast": 1.2, "baseline_psnr": 24.0}
    assert apply_gate(good, gate) == []
    bad = {**good, "contrast_error": 13.7, "cast": 3.8, "blown_highlights": 0.004, "baseline_cast": 2.0}
    reasons = apply_gate(bad, gate)
    assert any("contrast off the targets' by 13.7 L*, more than the untouched inputs (10.0)" in r for r in reasons)
    assert any("0.400% of pixels blown" in r for r in reasons)
    assert any("colour cast on near-white surfaces 3.80 > the baseline preset's 2.00" in r for r in reasons)
