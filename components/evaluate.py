"""Stage ``evaluate``: full-resolution tiled inference on the val split, and the gate.

The model runs through ``tiling.enhance_tiled`` with the tiling serving will use. Each
image is scored against its target and so is the identity baseline (input as output); the
gate compares the means with the floors in params.yaml. metrics.json is written either
way, so a failed gate is visible in ``dvc metrics show``; then the stage fails.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.config import EvaluateConfig, GateConfig, TilingConfig
from components.lmdb import read_lmdb
from components.metrics import psnr, ssim
from components.model_io import load_model, torch_runner
from components.stage import StageFailed, run_stage, write_json
from components.tiling import BatchFn, enhance_tiled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluatePaths:
    lmdb: Path
    train: Path
    out: Path


def score_pairs(lq: dict, gt: dict, run_batch: BatchFn, tiling: TilingConfig) -> list[dict]:
    rows = []
    for key in sorted(gt):
        out = enhance_tiled(lq[key], run_batch, tiling.tile, tiling.overlap, tiling.batch)
        rows.append({"image": key, "psnr": psnr(out, gt[key]), "ssim": ssim(out, gt[key]),
                     "identity_psnr": psnr(lq[key], gt[key]), "identity_ssim": ssim(lq[key], gt[key])})
        log.info("%s: %.2f dB (identity %.2f dB)", key, rows[-1]["psnr"], rows[-1]["identity_psnr"])
    return rows


def apply_gate(summary: dict, gate: GateConfig) -> list[str]:
    """Reasons the model fails the gate; empty when it passes."""
    reasons = []
    if summary["psnr"] < gate.min_psnr:
        reasons.append(f"PSNR {summary['psnr']:.2f} dB < floor {gate.min_psnr} dB")
    if summary["ssim"] < gate.min_ssim:
        reasons.append(f"SSIM {summary['ssim']:.4f} < floor {gate.min_ssim}")
    gain = summary["psnr"] - summary["identity_psnr"]
    if gain < gate.min_psnr_gain_over_identity:
        reasons.append(f"PSNR gain over identity {gain:.2f} dB < {gate.min_psnr_gain_over_identity} dB")
    return reasons


def evaluate_model(run_batch: BatchFn, lmdb_dir: Path, cfg: EvaluateConfig) -> dict:
    lq, gt = read_lmdb(lmdb_dir / "val" / "lq.lmdb"), read_lmdb(lmdb_dir / "val" / "gt.lmdb")
    rows = score_pairs(lq, gt, run_batch, cfg.tiling)
    summary = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "identity_psnr", "identity_ssim")}
    reasons = apply_gate(summary, cfg.gate)
    return {**summary, "images": len(rows), "gate_passed": not reasons, "gate_reasons": reasons,
            "tiling": cfg.tiling.model_dump(), "per_image": rows}


def _log_to_run(run_id: str, result: dict) -> None:
    import mlflow

    from components.tracking import use_tracking

    use_tracking()
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"val/{k}": result[k] for k in ("psnr", "ssim", "identity_psnr", "identity_ssim")})
        mlflow.set_tag("gate", "passed" if result["gate_passed"] else "failed")


def run_evaluate(cfg: EvaluateConfig, paths: EvaluatePaths) -> dict:
    model = load_model(paths.train / "model.pth")
    result = evaluate_model(torch_runner(model), paths.lmdb, cfg)
    write_json(paths.out / "metrics.json", {k: v for k, v in result.items() if k != "per_image"})
    write_json(paths.out / "per_image.json", result["per_image"])
    run_id = json.loads((paths.train / "run.json").read_text())["run_id"]
    _log_to_run(run_id, result)
    if not result["gate_passed"]:
        raise StageFailed("the model failed the gate: " + "; ".join(result["gate_reasons"]))
    return {k: result[k] for k in ("psnr", "ssim", "identity_psnr", "gate_passed")}


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", EvaluatePaths, run_evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
