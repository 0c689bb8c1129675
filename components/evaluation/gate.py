"""The gate: what a model must reach before it may be registered (``evaluate.gate`` in params.yaml).

Floors (PSNR, SSIM, colour error), both baselines beaten (the untouched input, the strongest
cheap preset fitted on the training pairs; not asked of a version that is that preset, with no
network), no regression against the champion on the pairs
neither model trained on, and what a retoucher checks (``retoucher.py``). Every number it reads
comes from pairs the scored model did not train on (a val split, or cross-validation's folds).
"""
from __future__ import annotations

from components.config import GateConfig


def apply_gate(summary: dict, gate: GateConfig) -> list[str]:
    """Reasons the model fails the gate; empty when it passes. Comparisons whose numbers are
    missing (no champion yet, no baseline) are not applied."""
    checks = [
        (summary["psnr"] < gate.min_psnr, f"PSNR {summary['psnr']:.2f} dB < floor {gate.min_psnr} dB"),
        (summary["ssim"] < gate.min_ssim, f"SSIM {summary['ssim']:.4f} < floor {gate.min_ssim}"),
    ]
    gain = summary["psnr"] - summary["identity_psnr"]
    checks.append((gain < gate.min_psnr_gain_over_identity,
                   f"PSNR gain over identity {gain:.2f} dB < {gate.min_psnr_gain_over_identity} dB"))
    if "baseline_psnr" in summary and summary.get("networks") != 0:  # 0: the model is that preset
        gain = summary["psnr"] - summary["baseline_psnr"]
        checks.append((gain < gate.min_psnr_gain_over_baseline, f"PSNR gain over the baseline preset "
                       f"({summary.get('baseline', 'curves')}) {gain:.2f} dB < {gate.min_psnr_gain_over_baseline} dB"))
    checks += retoucher_checks(summary, gate)
    if "ciede2000_mean" in summary:
        checks.append((summary["ciede2000_mean"] > gate.max_ciede2000_mean, f"colour error CIEDE2000 "
                       f"{summary['ciede2000_mean']:.2f} > {gate.max_ciede2000_mean}"))
    if "champion_psnr" in summary:
        drop = summary["champion_psnr"] - summary["psnr_on_champion_pairs"]
        checks.append((drop > gate.max_regression_vs_champion_db, f"{drop:.2f} dB worse than champion "
                       f"v{summary['champion_version']} on the {summary['champion_pairs']} pairs neither trained on "
                       f"(tolerance {gate.max_regression_vs_champion_db} dB)"))
    return [reason for failed, reason in checks if failed]


def retoucher_checks(summary: dict, gate: GateConfig) -> list[tuple[bool, str]]:
    """What a retoucher would send back: contrast pushed further from the targets' than the
    untouched inputs are, a colour cast on near-white surfaces worse than the baseline
    preset's, highlights blown where the targets kept them (``evaluation/retoucher.py``)."""
    checks = []
    if "contrast_error" in summary:
        checks.append((summary["contrast_error"] > summary["identity_contrast_error"] + gate.max_contrast_over_identity,
                       f"contrast off the targets' by {summary['contrast_error']:.1f} L*, more than the untouched "
                       f"inputs ({summary['identity_contrast_error']:.1f})"))
        checks.append((summary["blown_highlights"] > gate.max_blown_highlights,
                       f"{100 * summary['blown_highlights']:.3f}% of pixels blown where the targets kept detail "
                       f"(limit {100 * gate.max_blown_highlights:.3f}%)"))
    if "baseline_cast" in summary:
        limit = summary["baseline_cast"] + gate.max_cast_over_baseline
        checks.append((summary["cast"] > limit, f"colour cast on near-white surfaces {summary['cast']:.2f} > the "
                       f"baseline preset's {summary['baseline_cast']:.2f} + {gate.max_cast_over_baseline}"))
    return checks
