"""Stage ``register``: the gated ONNX model becomes a version in the MLflow registry.

The version carries lineage tags (``components/registry/lineage.py``: the commit and whether
the code differed from it, the data version, each upstream stage's inputs as dvc.lock records
them; metrics, gate result) and the alias ``challenger``. If the registry has no ``champion`` yet,
the first model gets that alias too, so a fresh install can serve at once; after that,
people promote by moving ``champion`` (MLflow UI or ``brighthouse promote``). Writes
``registered.json`` (version, aliases, run) and ``model.json`` (what was registered), which
alone DVC tracks, so that the same weights registered on another clone leave dvc.lock as it was.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

import json
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components.config import RegisterConfig
from components.data.splits import SPLITS_FILE, read_splits
from components.errors import StageFailed
from components.evaluation.review import REVIEW_DATA
from components.evaluation.scoring import mean_psnr, val_pairs
from components.inference.tensorrt_engine import build_engine, tensorrt_runner, unavailable_reason
from components.records import (
    EVALUATION_RECORD,
    EXPORT_RECORD,
    START_RECORD,
    EvaluationRecord,
    ExportRecord,
    StartRecord,
    VersionMetadata,
    read_record,
    write_json,
)
from components.registry.lineage import lineage_tags, version_tags
from components.registry.tracking import RegistryUnavailable, file_md5, registry_calls, training_run, use_tracking
from components.registry.tracking import client as tracking_client
from components.stage import run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterPaths:
    train: Path
    evaluate: Path
    export: Path
    out: Path
    lmdb: Path  # its val split scores a TensorRT engine before it may ship


def log_and_register(onnx_path: Path, run_id: str, name: str, metadata: dict,
                     extras: list[tuple[str, Path]]) -> str:
    """Log the ONNX as a model of the run, with ``extras`` ((artifact folder, file) pairs)
    beside it, and register it; returns the new version number."""
    import mlflow
    import onnx

    with mlflow.start_run(run_id=run_id):
        info = mlflow.onnx.log_model(
            onnx.load(str(onnx_path)), name="model", registered_model_name=name,
            metadata=metadata, pip_requirements=["onnxruntime", "numpy"],
        )
    for folder, path in extras:
        if path.is_file():
            tracking_client().log_model_artifact(info.model_id, str(path), folder)
    return info.registered_model_version


def version_extras(paths: RegisterPaths, fp16_ok: bool) -> list[tuple[str, Path]]:
    """What a person or a server needs beside the weights: how it was made and how it scored,
    and the FP16 variant when evaluation found it keeps quality."""
    fp16_extra = [("fp16", paths.export / "model_fp16.onnx")] if fp16_ok else []
    return [("config", paths.train / "basicsr_options.yml"), ("config", Path("params.yaml")),
            ("evaluation", paths.evaluate / "report.html"), ("evaluation", paths.evaluate / "metrics.json"),
            ("export", paths.export / EXPORT_RECORD), *fp16_extra]


def engine_val_loss_db(onnx_path: Path, workdir: Path, profile: dict, paths: RegisterPaths,
                       metrics: EvaluationRecord) -> float:
    """The PSNR the FP16 engine loses against the gated ONNX on the val split, run as served."""
    spec = metrics.inference
    runner = tensorrt_runner(onnx_path, workdir, profile["tile"], profile["batch"])
    return metrics.served_val_psnr - mean_psnr(runner, spec, val_pairs(paths.lmdb))


def tensorrt_extras(cfg: RegisterConfig, paths: RegisterPaths, metrics: EvaluationRecord, profile: dict,
                    workdir: Path) -> tuple[list, dict]:
    """The serving engine for this machine's GPU, when it has one and TensorRT, and when it
    keeps the gate's quality on the val split: (extras to ship under ``tensorrt/<key>/``, what
    happened). A failed build or check is recorded, not fatal: the ONNX passed the gate, and
    serving runs it on onnxruntime CUDA instead."""
    reason = "register.tensorrt is off" if cfg.tensorrt == "off" else unavailable_reason()
    if reason:
        return [], {"skipped": reason}
    onnx_path = paths.export / "model.onnx"
    try:
        built = build_engine(onnx_path, workdir, profile["tile"], profile["batch"])
        built["val_loss_db"] = engine_val_loss_db(onnx_path, workdir, profile, paths, metrics)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types for a failed TensorRT build
        log.error("TensorRT engine build failed; registering without one: %s", exc)
        return [], {"failed": str(exc)}
    limit = metrics.max_fp16_loss_db
    if built["val_loss_db"] > limit:
        why = (f"the FP16 engine loses {built['val_loss_db']:.3f} dB on the val split, over the "
               f"{limit} dB limit (evaluate.gate.max_fp16_loss_db)")
        log.error("%s: not shipped", why)
        return [], {"failed": why}
    log.info("TensorRT engine for %s built in %.0f s, %.4f dB from the gated ONNX", built["key"],
             built["build_seconds"], built["val_loss_db"])
    return [(f"tensorrt/{built['key']}", workdir / name) for name in built["files"]], built


def _versions(client: MlflowClient, name: str) -> list:
    """Every version of ``name`` ([] for a model not registered yet). A registry that fails to
    answer raises: taking a hiccup for "no versions" would register a retried model twice."""
    return client.search_model_versions(f"name='{name}'")


def register_new_version(cfg: RegisterConfig, paths: RegisterPaths, metrics: EvaluationRecord,
                         run_id: str) -> tuple[str, dict]:
    """Log and register the ONNX with its extras (and any TensorRT engine); (version, engine)."""

    export = read_record(ExportRecord, paths.export / EXPORT_RECORD)
    try:
        split = read_splits(paths.lmdb / SPLITS_FILE)
    except (FileNotFoundError, ValueError) as exc:
        raise StageFailed(str(exc)) from exc
    spec, start = metrics.inference, read_record(StartRecord, paths.train / START_RECORD)
    # train_pairs: a later gate compares this version only on pairs it (or a version it was fine-tuned from) trained on
    metadata = VersionMetadata(inference=spec, input="float32 NCHW RGB in [0,1]", pooling=export.pooling,
                               tlc_window=export.tlc_window, fp16=bool(metrics.fp16_ok),
                               fp16_loss_db=metrics.fp16_loss_db, validation=split.scheme, networks=export.networks,
                               train_pairs=sorted(set(split.train) | set(start.inherited_pairs)),
                               started_from=start.version, fine_tunes=start.fine_tunes).model_dump(mode="json")
    onnx_path = paths.export / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        profile = {"tile": spec.largest_input, "batch": spec.tiling.batch}
        trt_extras, engine = tensorrt_extras(cfg, paths, metrics, profile, Path(tmp))
        extras = version_extras(paths, bool(metrics.fp16_ok)) + trt_extras
        version = str(log_and_register(onnx_path, run_id, cfg.registry.model_name, metadata, extras))
    trt_tag = engine.get("key") or "none: " + engine.get("skipped", engine.get("failed", ""))
    tracking_client().set_model_version_tag(cfg.registry.model_name, version, "tensorrt", trt_tag)
    return version, engine


def logged_model_id(mv: ModelVersion) -> str:
    """The logged model behind a version (some stores leave ``model_id`` empty; ``source`` names it)."""
    return mv.model_id or (mv.source or "").removeprefix("models:/")


def review_link(experiment_id: str, run_id: str, artifact: str) -> str:
    """The MLflow UI's view of a run artifact (HTML is shown inline), relative to the UI itself."""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/{artifact}"


def attach_review(model_name: str, version: str, paths: RegisterPaths) -> str | None:
    """With the champion evaluate compared against: the review page, attached to the version
    (its artifacts, and its run's, where the UI opens it in one click from the version's
    description) and copied to ``<out>/review.html``; the artifact path, or None."""

    from components.evaluation.review_page import write_review_page
    from components.registry.versions import run_of, version_info

    source = paths.evaluate / REVIEW_DATA
    data = json.loads(source.read_text()) if source.is_file() else None
    if data is None or data["champion_version"] == version:
        return None
    if data["challenger_onnx_md5"] != file_md5(paths.export / "model.onnx"):
        log.warning("%s was written for another model; no review page", source)
        return None
    champion, client = data["champion_version"], tracking_client()
    mv = client.get_model_version(model_name, version)
    with tempfile.TemporaryDirectory() as tmp:
        page = write_review_page(data, version_info(model_name, version), version_info(model_name, champion),
                                 model_name, Path(tmp) / f"review-v{version}-vs-v{champion}.html")
        client.log_model_artifact(logged_model_id(mv), str(page), "review")
        client.log_artifact(mv.run_id, str(page), "review")
        paths.out.mkdir(parents=True, exist_ok=True)  # DVC removed it with its outputs
        shutil.copyfile(page, paths.out / "review.html")
    artifact = f"review/{page.name}"
    run_id = run_of(mv)
    link = review_link(client.get_run(run_id).info.experiment_id, run_id, artifact)
    client.update_model_version(model_name, version, description=(
        f"[Review: version {version} beside champion version {champion}]({link}) on {len(data['rows'])} "
        f"val photos, before/after at full resolution; the same page is in this version's artifacts ({artifact})."))
    return artifact


def run_register(cfg: RegisterConfig, paths: RegisterPaths) -> dict:
    metrics = read_record(EvaluationRecord, paths.evaluate / EVALUATION_RECORD)
    if not metrics.gate_passed:
        raise StageFailed("refusing to register a model that failed the gate: " + "; ".join(metrics.gate_reasons))
    with registry_calls(f"registering {paths.export / 'model.onnx'}"):
        use_tracking()
        run_id = training_run(paths.train)
        result = _register(cfg, paths, metrics, run_id)
    write_json(paths.out / "registered.json", result)
    # what DVC tracks: the same on every machine that registers these weights (versions, run ids
    # and aliases are this registry's facts, in registered.json and MLflow)
    write_json(paths.out / "model.json", {"model_name": cfg.registry.model_name,
                                          "onnx_md5": file_md5(paths.export / "model.onnx")})
    log.info("registered %s version %s as %s", cfg.registry.model_name, result["version"], ", ".join(result["aliases"]))
    return result


def _register(cfg: RegisterConfig, paths: RegisterPaths, metrics: EvaluationRecord, run_id: str) -> dict:
    """The version of this training run: created once; a retry (after a failure anywhere past
    its creation: tags, aliases, review) completes that same version."""
    client, reg = tracking_client(), cfg.registry
    same_run = [mv for mv in _versions(client, reg.model_name) if mv.run_id == run_id]
    if same_run:
        version, engine = str(same_run[0].version), {"skipped": "registered by an earlier attempt"}
    else:
        version, engine = register_new_version(cfg, paths, metrics, run_id)
    lineage, stages = lineage_tags(Path.cwd())
    write_json(paths.out / "lineage" / "stages.json", stages)
    client.log_artifact(run_id, str(paths.out / "lineage" / "stages.json"), "lineage")
    start = read_record(StartRecord, paths.train / START_RECORD)
    for key, value in version_tags(metrics, run_id, lineage, start).items():
        client.set_model_version_tag(reg.model_name, version, key, value)
    aliases = [reg.challenger_alias]
    if cfg.first_is_champion and reg.champion_alias not in client.get_registered_model(reg.model_name).aliases:
        aliases.append(reg.champion_alias)
    for alias in aliases:
        client.set_registered_model_alias(reg.model_name, alias, version)
    review = attach_review(reg.model_name, version, paths)
    return {"model_name": reg.model_name, "version": version, "aliases": aliases, "run_id": run_id,
            "tensorrt": engine, "review": review}


def main(argv: list[str] | None = None) -> int:
    try:
        return run_stage("register", RegisterPaths, run_register, argv)
    except RegistryUnavailable as exc:  # a fault, not a verdict: one clear line, no traceback
        print(f"FAILED (registry unavailable): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
