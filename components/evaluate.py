"""Stage ``evaluate``: score what will be served, on the val split at full resolution, and gate.

The exported ONNX runs in onnxruntime through ``inference.enhance`` in the model's mode
(``tiled``, or ``global_view`` with its transfer), exactly as serving runs it. Per image: PSNR, SSIM, CIEDE2000 (mean, p95), LPIPS when its weights are here; the same
split is scored for the identity baseline (input as output), for global tone curves fitted on
the training pairs (``components/baseline.py``) and for the current ``champion``. The gate
(params.yaml) wants floors met, both baselines beaten and no regression against the champion.
metrics.json and report.html are written either way; then a failing model stops the pipeline.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.baseline import apply_tone_curves, fit_tone_curves
from components.config import EvaluateConfig, GateConfig, InferenceSpec
from components.lmdb import iter_lmdb, read_lmdb
from components.metrics import ciede2000, psnr, ssim
from components.stage import StageFailed, run_stage, write_json
from components.inference import enhance, spec_from_metadata
from components.tiling import BatchFn

log = logging.getLogger(__name__)
WORST = 3  # triptychs in the report


@dataclass(frozen=True)
class EvaluatePaths:
    lmdb: Path
    train: Path
    export: Path
    out: Path


def score_image(out: np.ndarray, gt: np.ndarray, lq: np.ndarray, curves=None, lpips_fn=None) -> dict:
    de_mean, de_p95 = ciede2000(out, gt)
    row = {"psnr": psnr(out, gt), "ssim": ssim(out, gt), "ciede2000_mean": de_mean, "ciede2000_p95": de_p95,
           "identity_psnr": psnr(lq, gt), "identity_ssim": ssim(lq, gt)}
    if curves is not None:
        curved = apply_tone_curves(lq, curves)
        row["baseline_psnr"] = psnr(curved, gt)
        row["baseline_ciede2000_mean"] = ciede2000(curved, gt)[0]
    if lpips_fn is not None:
        row["lpips"] = lpips_fn(out, gt)
    return row


def score_pairs(lq: dict, gt: dict, run_batch: BatchFn, spec: InferenceSpec, curves=None, lpips_fn=None,
                keep_worst: int = 0) -> tuple[list[dict], list]:
    """Rows per image (with the seconds per megapixel the model took), and the ``keep_worst``
    lowest-PSNR images as (key, input, output, target)."""
    rows, worst = [], []
    for key in sorted(gt):
        start = time.perf_counter()
        out = enhance(lq[key], run_batch, spec)
        seconds_per_mp = (time.perf_counter() - start) / (out.shape[0] * out.shape[1] / 1e6)
        rows.append({"image": key, **score_image(out, gt[key], lq[key], curves, lpips_fn),
                     "seconds_per_mp": seconds_per_mp})
        log.info("%s: %.2f dB (identity %.2f dB)", key, rows[-1]["psnr"], rows[-1]["identity_psnr"])
        if keep_worst:
            worst = sorted(worst + [(rows[-1]["psnr"], key, lq[key], out, gt[key])], key=lambda w: w[0])[:keep_worst]
    return rows, [w[1:] for w in worst]


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
    if "baseline_psnr" in summary:
        gain = summary["psnr"] - summary["baseline_psnr"]
        checks.append((gain < gate.min_psnr_gain_over_baseline, f"PSNR gain over the tone-curve baseline "
                       f"{gain:.2f} dB < {gate.min_psnr_gain_over_baseline} dB"))
    if "ciede2000_mean" in summary:
        checks.append((summary["ciede2000_mean"] > gate.max_ciede2000_mean, f"colour error CIEDE2000 "
                       f"{summary['ciede2000_mean']:.2f} > {gate.max_ciede2000_mean}"))
    if "champion_psnr" in summary:
        drop = summary["champion_psnr"] - summary["psnr"]
        checks.append((drop > gate.max_regression_vs_champion_db, f"{drop:.2f} dB worse than champion "
                       f"v{summary['champion_version']} on the same split (tolerance "
                       f"{gate.max_regression_vs_champion_db} dB)"))
    return [reason for failed, reason in checks if failed]


def summarize(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "image"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def served_spec(cfg: EvaluateConfig, view: dict) -> InferenceSpec:
    """The model's mode and working size (from its checkpoint) with this section's tiling and
    transfer: what the gate scores, and what the version records for serving."""
    return InferenceSpec(**view, tiling=cfg.tiling, transfer=cfg.transfer)


def evaluate_model(run_batch: BatchFn, lmdb_dir: Path, cfg: EvaluateConfig, curves=None, lpips_fn=None,
                   extra: dict | None = None, spec: InferenceSpec | None = None) -> dict:
    """Score ``run_batch`` on the val split and gate it; ``extra`` adds comparisons (champion)."""
    spec = spec or served_spec(cfg, {"mode": "tiled"})
    lq, gt = read_lmdb(lmdb_dir / "val" / "lq.lmdb"), read_lmdb(lmdb_dir / "val" / "gt.lmdb")
    rows, worst = score_pairs(lq, gt, run_batch, spec, curves, lpips_fn, keep_worst=WORST)
    summary = {**summarize(rows), **(extra or {})}
    reasons = apply_gate(summary, cfg.gate)
    return {**summary, "images": len(rows), "gate_passed": not reasons, "gate_reasons": reasons,
            "tiling": spec.tiling.model_dump(), "inference": spec.model_dump(), "per_image": rows, "worst": worst}


def champion_score(lmdb_dir: Path, model_name: str) -> dict:
    """The current champion's PSNR on this split (its own ONNX and tiling); {} if none yet."""
    from components.export import ort_runner
    from components.model_store import NoModelError, alias_version, fetch
    from components.register import CHAMPION

    try:
        ref = fetch(model_name, CHAMPION, alias_version(model_name, CHAMPION))
    except NoModelError:
        return {}
    lq, gt = read_lmdb(lmdb_dir / "val" / "lq.lmdb"), read_lmdb(lmdb_dir / "val" / "gt.lmdb")
    spec = spec_from_metadata(ref.metadata)
    rows, _ = score_pairs(lq, gt, ort_runner(ref.onnx_path), spec)
    return {"champion_version": ref.version, "champion_mode": spec.mode,
            "champion_psnr": float(np.mean([r["psnr"] for r in rows]))}


def pooling_comparison(paths: EvaluatePaths, spec: InferenceSpec) -> dict:
    """TLC's measured effect: the same weights with the other channel-attention pooling,
    run in PyTorch in the same mode. Reported, not gated: the served ONNX is gated."""
    from components.model_io import load_model, torch_runner

    export = json.loads((paths.export / "export.json").read_text())
    served, other = export["pooling"], "global" if export["pooling"] == "tlc" else "tlc"
    model = load_model(paths.train / "model.pth", tlc_window=export["tlc_window"] if other == "tlc" else 0)
    lq, gt = read_lmdb(paths.lmdb / "val" / "lq.lmdb"), read_lmdb(paths.lmdb / "val" / "gt.lmdb")
    rows, _ = score_pairs(lq, gt, torch_runner(model), spec)
    return {"pooling": served, "tlc_window": export["tlc_window"],
            f"{other}_pooling_psnr": float(np.mean([r["psnr"] for r in rows]))}


def fp16_comparison(fp16_onnx: Path, lmdb_dir: Path, cfg: EvaluateConfig, spec: InferenceSpec,
                    psnr_fp32: float) -> dict:
    """The FP16 ONNX on the same split: its PSNR loss decides whether it ships."""
    from components.export import ort_runner

    lq, gt = read_lmdb(lmdb_dir / "val" / "lq.lmdb"), read_lmdb(lmdb_dir / "val" / "gt.lmdb")
    rows, _ = score_pairs(lq, gt, ort_runner(fp16_onnx), spec)
    loss = psnr_fp32 - float(np.mean([r["psnr"] for r in rows]))
    log.info("FP16 ONNX loses %.4f dB (limit %s dB)", loss, cfg.gate.max_fp16_loss_db)
    return {"fp16_loss_db": loss, "fp16_ok": loss <= cfg.gate.max_fp16_loss_db}


def variant_comparisons(cfg: EvaluateConfig, paths: EvaluatePaths, spec: InferenceSpec, psnr_served: float) -> dict:
    """Measured, not gated: TLC vs global pooling, and the FP16 export's quality."""
    out: dict = {}
    if cfg.compare_pooling:
        out.update(pooling_comparison(paths, spec))
        other = next(k for k in out if k.endswith("_pooling_psnr"))
        out["tlc_gain_db"] = (1 if out["pooling"] == "tlc" else -1) * (psnr_served - out[other])
        log.info("TLC gain %.3f dB (served pooling: %s)", out["tlc_gain_db"], out["pooling"])
    export = json.loads((paths.export / "export.json").read_text())
    if export.get("fp16_onnx"):
        out.update(fp16_comparison(paths.export / export["fp16_onnx"], paths.lmdb, cfg, spec, psnr_served))
    return out


def fit_baseline(lmdb_dir: Path) -> np.ndarray:
    pairs = zip((img for _, img in iter_lmdb(lmdb_dir / "train" / "lq.lmdb")),
                (img for _, img in iter_lmdb(lmdb_dir / "train" / "gt.lmdb")))
    return fit_tone_curves(pairs)


def _log_to_run(run_id: str, result: dict, report: Path) -> None:
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"val/{k}": v for k, v in result.items()
                            if isinstance(v, float) and k != "champion_version"})
        mlflow.set_tag("gate", "passed" if result["gate_passed"] else "failed")
        mlflow.log_artifact(str(report), "evaluation")


def run_evaluate(cfg: EvaluateConfig, paths: EvaluatePaths) -> dict:
    from components.eval_report import write_report
    from components.export import ort_runner
    from components.perceptual import lpips_scorer
    from components.tracking import training_run, use_tracking

    use_tracking()
    run_id = training_run(paths.train)
    lpips_fn, lpips_note = lpips_scorer()
    export = json.loads((paths.export / "export.json").read_text())
    spec = served_spec(cfg, export.get("view", {"mode": "tiled"}))
    result = evaluate_model(ort_runner(paths.export / "model.onnx"), paths.lmdb, cfg, fit_baseline(paths.lmdb),
                            lpips_fn, champion_score(paths.lmdb, cfg.model_name), spec)
    if lpips_fn is None:
        result["lpips"] = lpips_note
    result.update(variant_comparisons(cfg, paths, spec, result["psnr"]))
    worst = result.pop("worst")
    report = write_report(result, worst, paths.out / "report.html")
    write_json(paths.out / "metrics.json", {k: v for k, v in result.items() if k != "per_image"})
    write_json(paths.out / "per_image.json", result["per_image"])
    _log_to_run(run_id, result, report)
    if not result["gate_passed"]:
        raise StageFailed("the model failed the gate: " + "; ".join(result["gate_reasons"]))
    return {k: result[k] for k in ("psnr", "ssim", "baseline_psnr", "identity_psnr", "gate_passed")}


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", EvaluatePaths, run_evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
