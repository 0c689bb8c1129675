"""Stage ``evaluate``: score what will be served, on the val split at full resolution, and gate.

The exported ONNX runs in onnxruntime through ``inference.enhance`` in the model's mode
(``tiled``, or ``global_view`` with its transfer), exactly as serving runs it. Per image: PSNR,
SSIM, CIEDE2000 (mean, p95), LPIPS when its weights are here; the same split is scored for the
identity baseline (input as output), for the strongest cheap preset fitted on the training pairs
(``components/model/presets.py``) and for the current ``champion``, all in one streaming pass
over the split (``components/evaluation/scoring.py``): memory does not grow with it. The gate
(params.yaml) wants floors met, both baselines beaten, no regression against the champion, and
what a retoucher checks (contrast, colour cast, blown highlights: ``evaluation/retoucher.py``) no
worse than the inputs' or the preset's.
metrics.json and report.html are written either way; then a failing model stops the pipeline.
With a champion, the same pass also gathers the challenger-vs-champion review (``review.json``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from components.config import EvaluateConfig, InferenceSpec, RegistryConfig
from components.data.lmdb_read import iter_pairs
from components.data.splits import SPLITS_FILE, SplitRecord, comparable_pairs, read_splits
from components.errors import StageFailed
from components.evaluation.cross_validation import Fold, folds_of, score_folds
from components.evaluation.gate import apply_gate
from components.evaluation.review import REVIEW_DATA, ReviewCollector
from components.evaluation.runtime_variants import variant_results, variant_runners
from components.evaluation.scoring import PairObserver, Runner, score_split, summarize, val_pairs
from components.inference.tiling import BatchFn
from components.model.presets import PRESET_FILE, Preset, fit_preset, read_preset
from components.records import (
    EVALUATION_RECORD,
    EXPORT_RECORD,
    EvaluationRecord,
    ExportRecord,
    read_record,
    write_json,
    write_record,
)
from components.registry.tracking import file_md5
from components.stage import run_stage

if TYPE_CHECKING:
    from components.evaluation.perceptual import LpipsFn

log = logging.getLogger(__name__)
TIMINGS = ("seconds_per_mp",)  # measured, so different on every run
WORST = 3  # triptychs in the report


@dataclass(frozen=True)
class EvaluatePaths:
    lmdb: Path
    train: Path
    export: Path
    out: Path


def exported_spec(cfg: EvaluateConfig, export: ExportRecord, export_json: Path) -> InferenceSpec:
    """params.yaml's inference spec, which export checked the ONNX under: what the gate scores,
    and what the version records for serving. An export made under another spec is refused."""
    if export.inference != cfg.inference:
        raise StageFailed(f"{export_json} was exported under inference {export.inference.model_dump()}, but "
                          f"params.yaml says {cfg.inference.model_dump()}: run export again (dvc repro)")
    return cfg.inference


def evaluate_model(run_batch: BatchFn, lmdb_dir: Path, cfg: EvaluateConfig, preset: Preset | None = None,
                   lpips_fn: LpipsFn | None = None,
                   extra: dict | None = None, spec: InferenceSpec | None = None,
                   others: tuple[Runner, ...] = (), on_pair: PairObserver | None = None) -> dict:
    """Score ``run_batch`` on the val split and gate it, in one streaming pass that also scores
    ``others`` (champion, other pooling, FP16) on each pair; ``extra`` adds their labels."""
    spec = spec or cfg.inference
    rows, worst = score_split(val_pairs(lmdb_dir), Runner("served", run_batch, spec), others, preset, lpips_fn,
                              keep_worst=WORST, on_pair=on_pair)
    baseline = {} if preset is None else {"baseline": preset.kind, **{f"baseline_loo_psnr_{k}": v
                                                                      for k, v in preset.loo_psnr.items()}}
    return gated(rows, worst, cfg, spec, {**baseline, **(extra or {})})


def gated(rows: list[dict], worst: list, cfg: EvaluateConfig, spec: InferenceSpec, extra: dict) -> dict:
    """The rows' means with ``extra`` beside them, and the gate's verdict on them."""
    summary = {**summarize(rows), **extra}
    reasons = apply_gate(summary, cfg.gate)
    return {**summary, "images": len(rows), "gate_passed": not reasons, "gate_reasons": reasons,
            "tiling": spec.tiling.model_dump(), "inference": spec.model_dump(), "per_image": rows, "worst": worst}


def evaluate_folds(folds: list[Fold], cfg: EvaluateConfig, spec: InferenceSpec, champion: Runner | None,
                   lpips_fn: LpipsFn | None = None, extra: dict | None = None, on_pair: PairObserver | None = None,
                   runner_for: Callable[[Path], BatchFn] | None = None) -> dict:
    """Cross-validation's gate: each fold model on the fold it did not train on (``cross_validation.py``)."""
    from components.inference.onnx_session import ort_runner

    rows, worst, per_fold = score_folds(folds, spec, runner_for or ort_runner, champion, lpips_fn, WORST, on_pair)
    kinds = sorted({f["baseline"] for f in per_fold})
    return gated(rows, worst, cfg, spec, {"baseline": "/".join(kinds), "folds": per_fold, **(extra or {})})


def champion_runner(registry: RegistryConfig, split: SplitRecord) -> tuple[Runner | None, dict]:
    """The current champion as served (its own ONNX, mode and tiling), scored only on the pairs
    it did not train on (it runs on all, for the review page); None before the first."""
    from components.inference.onnx_session import ort_runner
    from components.registry.model_store import NoModelError, alias_version, fetch
    name, alias = registry.model_name, registry.champion_alias
    try:
        ref = fetch(name, alias, alias_version(name, alias))
    except NoModelError:
        return None, {}
    spec = ref.metadata.inference
    pairs = comparable_pairs(split, ref.metadata.train_pairs)
    if not pairs:  # still run, for the review page, which marks those pairs
        log.warning("champion v%s is not compared by the gate: it trained on every pair scored here (or does not "
                    "record which it trained on)", ref.version)
    runner = Runner("champion", ort_runner(ref.onnx_path), spec, keep_output=True, only=frozenset(pairs))
    return runner, {"champion_version": ref.version, "champion_mode": spec.mode, "champion_pairs": len(pairs)}


def fit_baseline(lmdb_dir: Path) -> Preset:
    """The strongest cheap preset on the train pairs, fitted afresh (train writes the same one
    beside the weights: ``read_preset``)."""
    return fit_preset((lq, gt) for _, lq, gt in iter_pairs(lmdb_dir / "train_whole"))


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
    write_record(out / EVALUATION_RECORD, EvaluationRecord.model_validate(
        {k: v for k, v in result.items() if k != "per_image" and k not in TIMINGS}))
    write_json(out / "per_image.json", rows)
    write_json(out / "timing.json", {**{k: result[k] for k in TIMINGS},
                                     "per_image": {r["image"]: {k: r[k] for k in TIMINGS}
                                                   for r in result["per_image"]}})


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
    from components.registry.tracking import training_run, use_tracking

    use_tracking()
    run_id = training_run(paths.train)
    lpips_fn, lpips_note = lpips_scorer()
    export = read_record(ExportRecord, paths.export / EXPORT_RECORD)
    spec = exported_spec(cfg, export, paths.export / EXPORT_RECORD)
    split = _stage_input(read_splits, paths.lmdb / SPLITS_FILE)
    champion, extra = champion_runner(cfg.registry, split)
    extra["networks"] = export.networks  # 0: the preset alone, which the gate does not ask to beat itself
    review = ReviewCollector(cfg.review) if champion else None
    result = score_and_gate(cfg, paths, export, spec, split, champion, extra, lpips_fn, review)
    if lpips_fn is None:
        result["lpips"] = lpips_note
    worst = result.pop("worst")
    report = write_report(result, worst, paths.out / "report.html")
    write_outputs(result, paths.out)
    write_review_data(review, extra.get("champion_version"), paths)
    _log_to_run(run_id, result, report)
    if not result["gate_passed"]:
        raise StageFailed("the model failed the gate: " + "; ".join(result["gate_reasons"]))
    return {k: result[k] for k in ("psnr", "ssim", "baseline_psnr", "identity_psnr", "gate_passed")}


def score_and_gate(cfg: EvaluateConfig, paths: EvaluatePaths, export: ExportRecord, spec: InferenceSpec,
                   split: SplitRecord,
                   champion: Runner | None, extra: dict, lpips_fn: LpipsFn | None,
                   review: ReviewCollector | None) -> dict:
    """The gate's pass (val split, or each fold model on its own fold) and the served model's
    runtime checks (the other pooling, FP16), which a val split shares with the gate's pass and
    cross-validation runs on every pair: they compare runtimes of one model, not its quality."""
    from components.inference.onnx_session import ort_runner

    variants, info = variant_runners(cfg, paths.lmdb, paths.train, paths.export, spec)
    served = ort_runner(paths.export / "model.onnx")
    if split.cross_validated:
        folds = _stage_input(folds_of, paths.lmdb, paths.train, paths.export, export.members)
        result = evaluate_folds(folds, cfg, spec, champion, lpips_fn, {**extra, **info}, on_pair=review)
        runtime_rows, _ = score_split(val_pairs(paths.lmdb), Runner("served", served, spec), variants)
    else:
        preset = _stage_input(read_preset, paths.train / PRESET_FILE)
        result = evaluate_model(served, paths.lmdb, cfg, preset, lpips_fn, {**extra, **info}, spec,
                                tuple(([champion] if champion else []) + variants), on_pair=review)
        runtime_rows = result["per_image"]
    result.update(variant_results(runtime_rows, info.get("pooling"), cfg), validation=split.scheme,
                  served_val_psnr=float(np.mean([r["psnr"] for r in runtime_rows])),
                  max_fp16_loss_db=cfg.gate.max_fp16_loss_db)
    return result


T = TypeVar("T")


def _stage_input(read: Callable[..., T], *args: object) -> T:
    """What a stage reads from another, or a StageFailed naming the file that is missing or foreign."""
    try:
        return read(*args)
    except (FileNotFoundError, ValueError) as exc:
        raise StageFailed(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    return run_stage("evaluate", EvaluatePaths, run_evaluate, argv)


if __name__ == "__main__":
    raise SystemExit(main())
