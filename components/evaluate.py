"""Stage ``evaluate``: score what will be served, on the val split at full resolution, and gate.

The exported ONNX runs in onnxruntime through ``inference.enhance`` in the model's mode
(``tiled``, or ``global_view`` with its transfer), exactly as serving runs it. Per image: PSNR, SSIM, CIEDE2000 (mean, p95), LPIPS when its weights are here; the same
split is scored for the identity baseline (input as output), for the strongest cheap preset fitted
on the training pairs (``components/model/presets.py``) and for the current ``champion``, all in one
streaming pass over the split (``components/evaluation/scoring.py``): memory does not grow with it. The gate
(params.yaml) wants floors met, both baselines beaten, no regression against the champion, and
what a retoucher checks (contrast, colour cast, blown highlights: ``evaluation/retoucher.py``) no
worse than the inputs' or the preset's.
metrics.json and report.html are written either way; then a failing model stops the pipeline.
With a champion, the same pass also gathers the challenger-vs-champion review (``review.json``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path


from components.config import EvaluateConfig, GateConfig, InferenceSpec, RegistryConfig
from components.data.lmdb_read import iter_lmdb
from components.evaluation.review import REVIEW_DATA, ReviewCollector
from components.evaluation.scoring import PairObserver, Runner, score_split, summarize, val_pairs
from components.inference.modes import spec_from_metadata
from components.inference.tiling import BatchFn
from components.model.presets import PRESET_FILE, Preset, fit_preset, read_preset
from components.registry.tracking import file_md5
from components.stage import StageFailed, run_stage, write_json

log = logging.getLogger(__name__)
TIMINGS = ("seconds_per_mp",)  # measured, so different on every run
WORST = 3  # triptychs in the report


@dataclass(frozen=True)
class EvaluatePaths:
    lmdb: Path
    train: Path
    export: Path
    out: Path


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
        checks.append((gain < gate.min_psnr_gain_over_baseline, f"PSNR gain over the baseline preset "
                       f"({summary.get('baseline', 'curves')}) {gain:.2f} dB < {gate.min_psnr_gain_over_baseline} dB"))
    checks += retoucher_checks(summary, gate)
    if "ciede2000_mean" in summary:
        checks.append((summary["ciede2000_mean"] > gate.max_ciede2000_mean, f"colour error CIEDE2000 "
                       f"{summary['ciede2000_mean']:.2f} > {gate.max_ciede2000_mean}"))
    if "champion_psnr" in summary:
        drop = summary["champion_psnr"] - summary["psnr"]
        checks.append((drop > gate.max_regression_vs_champion_db, f"{drop:.2f} dB worse than champion "
                       f"v{summary['champion_version']} on the same split (tolerance "
                       f"{gate.max_regression_vs_champion_db} dB)"))
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


def served_spec(cfg: EvaluateConfig, view: dict) -> InferenceSpec:
    """The model's mode and working size (from its checkpoint) with this section's tiling and
    transfer: what the gate scores, and what the version records for serving."""
    return InferenceSpec(**view, tiling=cfg.tiling, transfer=cfg.transfer)


def evaluate_model(run_batch: BatchFn, lmdb_dir: Path, cfg: EvaluateConfig, preset: Preset | None = None,
                   lpips_fn=None,
                   extra: dict | None = None, spec: InferenceSpec | None = None,
                   others: tuple[Runner, ...] = (), on_pair: PairObserver | None = None) -> dict:
    """Score ``run_batch`` on the val split and gate it, in one streaming pass that also scores
    ``others`` (champion, other pooling, FP16) on each pair; ``extra`` adds their labels."""
    spec = spec or served_spec(cfg, {"mode": "tiled"})
    rows, worst = score_split(val_pairs(lmdb_dir), Runner("served", run_batch, spec), others, preset, lpips_fn,
                              keep_worst=WORST, on_pair=on_pair)
    summary = {**summarize(rows), **(extra or {})}
    if preset is not None:
        summary.update(baseline=preset.kind, **{f"baseline_loo_psnr_{k}": v for k, v in preset.loo_psnr.items()})
    reasons = apply_gate(summary, cfg.gate)
    return {**summary, "images": len(rows), "gate_passed": not reasons, "gate_reasons": reasons,
            "tiling": spec.tiling.model_dump(), "inference": spec.model_dump(), "per_image": rows, "worst": worst}


def champion_runner(registry: RegistryConfig) -> tuple[Runner | None, dict]:
    """The current champion as served (its own ONNX, mode and tiling), or None before the first."""
    from components.inference.onnx_session import ort_runner
    from components.registry.model_store import NoModelError, alias_version, fetch
    name, alias = registry.model_name, registry.champion_alias
    try:
        ref = fetch(name, alias, alias_version(name, alias))
    except NoModelError:
        return None, {}
    spec = spec_from_metadata(ref.metadata)
    return Runner("champion", ort_runner(ref.onnx_path), spec, keep_output=True), {"champion_version": ref.version,
                                                                                   "champion_mode": spec.mode}


def variant_runners(cfg: EvaluateConfig, paths: EvaluatePaths, spec: InferenceSpec) -> tuple[list[Runner], dict]:
    """Measured, not gated: the same weights with the other channel-attention pooling (TLC's
    effect, in PyTorch), and the FP16 ONNX (its loss decides whether it ships)."""
    from components.inference.onnx_session import ort_runner
    from components.model.model_io import load_model, torch_runner

    export = json.loads((paths.export / "export.json").read_text())
    runners, info = [], {}
    if cfg.compare_pooling:
        served, other = export["pooling"], "global" if export["pooling"] == "tlc" else "tlc"
        model = load_model(paths.train / "model.pth", tlc_window=export["tlc_window"] if other == "tlc" else 0)
        runners.append(Runner(f"{other}_pooling", torch_runner(model), spec))
        info.update(pooling=served, tlc_window=export["tlc_window"])
    if export.get("fp16_onnx"):
        runners.append(Runner("fp16", ort_runner(paths.export / export["fp16_onnx"]), spec))
    return runners, info


def variant_results(result: dict, cfg: EvaluateConfig) -> dict:
    out = {}
    other = next((k for k in result if k.endswith("_pooling_psnr")), None)
    if other:
        out["tlc_gain_db"] = (1 if result["pooling"] == "tlc" else -1) * (result["psnr"] - result[other])
        log.info("TLC gain %.3f dB (served pooling: %s)", out["tlc_gain_db"], result["pooling"])
    if "fp16_psnr" in result:
        loss = result["psnr"] - result["fp16_psnr"]
        log.info("FP16 ONNX loses %.4f dB (limit %s dB)", loss, cfg.gate.max_fp16_loss_db)
        out.update(fp16_loss_db=loss, fp16_ok=loss <= cfg.gate.max_fp16_loss_db)
    return out


def fit_baseline(lmdb_dir: Path) -> Preset:
    """The strongest cheap preset on the train pairs, fitted afresh (train writes the same one
    beside the weights: ``read_preset``)."""
    pairs = zip((img for _, img in iter_lmdb(lmdb_dir / "train_whole" / "lq.lmdb")),
                (img for _, img in iter_lmdb(lmdb_dir / "train_whole" / "gt.lmdb")))
    return fit_preset(pairs)


def _log_to_run(run_id: str, result: dict, report: Path) -> None:
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"val/{k}": v for k, v in result.items()
                            if isinstance(v, float) and k != "champion_version"})
        mlflow.set_tag("gate", "passed" if result["gate_passed"] else "failed")
        mlflow.log_artifact(str(report), "evaluation")


def write_outputs(result: dict, out: Path) -> None:
    """Scores and the gate's verdict go to the files DVC tracks (metrics.json, per_image.json),
    which are byte-identical when the same model is evaluated on the same data again; timings,
    measured anew each time, go to timing.json (and the report and MLflow) only."""
    rows = [{k: v for k, v in row.items() if k not in TIMINGS} for row in result["per_image"]]
    write_json(out / "metrics.json", {k: v for k, v in result.items() if k != "per_image" and k not in TIMINGS})
    write_json(out / "per_image.json", rows)
    write_json(out / "timing.json", {**{k: result[k] for k in TIMINGS},
                                     "per_image": {r["image"]: {k: r[k] for k in TIMINGS} for r in result["per_image"]}})


def write_review_data(review: ReviewCollector | None, champion_version: str | None, paths: EvaluatePaths) -> None:
    """What register turns into the challenger-vs-champion page (not tracked by DVC: previews
    of another model's outputs); removed when there is no champion to compare with."""
    target = paths.out / REVIEW_DATA
    if review is None:
        target.unlink(missing_ok=True)
        return
    write_json(target, {"champion_version": champion_version, "challenger_onnx_md5":
                        file_md5(paths.export / "model.onnx"), **review.result()})


def run_evaluate(cfg: EvaluateConfig, paths: EvaluatePaths) -> dict:
    from components.evaluation.eval_report import write_report
    from components.evaluation.perceptual import lpips_scorer
    from components.inference.onnx_session import ort_runner
    from components.registry.tracking import training_run, use_tracking

    use_tracking()
    run_id = training_run(paths.train)
    lpips_fn, lpips_note = lpips_scorer()
    export = json.loads((paths.export / "export.json").read_text())
    spec = served_spec(cfg, export.get("view", {"mode": "tiled"}))
    champion, extra = champion_runner(cfg.registry)
    variants, info = variant_runners(cfg, paths, spec)
    review = ReviewCollector(cfg.review) if champion else None
    try:
        preset = read_preset(paths.train / PRESET_FILE)
    except (FileNotFoundError, ValueError) as exc:
        raise StageFailed(str(exc)) from exc
    result = evaluate_model(ort_runner(paths.export / "model.onnx"), paths.lmdb, cfg, preset,
                            lpips_fn, {**extra, **info}, spec, tuple(([champion] if champion else []) + variants),
                            on_pair=review)
    if lpips_fn is None:
        result["lpips"] = lpips_note
    result.update(variant_results(result, cfg), runtime_loss_limit_db=cfg.gate.max_fp16_loss_db)
    worst = result.pop("worst")
    report = write_report(result, worst, paths.out / "report.html")
    write_outputs(result, paths.out)
    write_review_data(review, extra.get("champion_version"), paths)
    _log_to_run(run_id, result, report)
    if not result["gate_passed"]:
        raise StageFailed("the model failed the gate: " + "; ".join(result["gate_reasons"]))
    return {k: result[k] for k in ("psnr", "ssim", "baseline_psnr", "identity_psnr", "gate_passed")}


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", EvaluatePaths, run_evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
