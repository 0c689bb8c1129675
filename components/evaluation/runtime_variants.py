"""The served model's other runtimes, measured beside the gate and not gated: the same weights
with the other channel-attention pooling (TLC's effect, in PyTorch) and the FP16 ONNX (its loss
decides whether it ships). They compare runtimes of one model, not its quality, and on a CPU
each costs as much as the gate's own pass, so they are scored on ``evaluate.variant_pairs``
val pairs, and the result says on how many."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from components.config import EvaluateConfig, InferenceSpec
from components.data.lmdb_read import lmdb_shapes
from components.evaluation.scoring import Runner
from components.records import EXPORT_RECORD, ExportRecord, read_record

log = logging.getLogger(__name__)


def variant_sample(lmdb_dir: Path, n: int) -> frozenset[str] | None:
    """The val pairs the runtime variants are scored on: the first ``n`` (None: all of them)."""
    keys = list(lmdb_shapes(lmdb_dir / "val" / "gt.lmdb"))
    return None if n == 0 or n >= len(keys) else frozenset(keys[:n])


def variant_runners(cfg: EvaluateConfig, lmdb_dir: Path, train_dir: Path, export_dir: Path,
                    spec: InferenceSpec) -> tuple[list[Runner], dict]:
    """Measured, not gated: the same weights with the other channel-attention pooling (TLC's
    effect, in PyTorch), and the FP16 ONNX (its loss decides whether it ships), each on
    ``evaluate.variant_pairs`` val pairs: they compare runtimes of one model, and on a CPU
    each costs as much as the gate's own pass."""
    from components.inference.onnx_session import ort_runner
    from components.model.model_io import load_model, torch_runner

    export = read_record(ExportRecord, export_dir / EXPORT_RECORD)
    sample = variant_sample(lmdb_dir, cfg.variant_pairs)
    runners: list[Runner] = []
    info: dict[str, object] = {}
    if cfg.compare_pooling:
        served, other = export.pooling, "global" if export.pooling == "tlc" else "tlc"
        model = load_model(train_dir / "model.pth", tlc_window=export.tlc_window if other == "tlc" else 0)
        runners.append(Runner(f"{other}_pooling", torch_runner(model), spec, only=sample))
        info.update(pooling=served, tlc_window=export.tlc_window)
    if export.fp16_onnx:
        runners.append(Runner("fp16", ort_runner(export_dir / export.fp16_onnx), spec, only=sample))
    return runners, info


def _paired_loss(rows: list[dict], column: str) -> tuple[float, int]:
    """Mean served PSNR minus ``column`` over the pairs that have both, and how many there are."""
    shared = [r for r in rows if column in r]
    return float(np.mean([r["psnr"] - r[column] for r in shared])), len(shared)


def variant_results(rows: list[dict], pooling: str | None, cfg: EvaluateConfig) -> dict:
    out: dict[str, object] = {}
    other = next((k for r in rows for k in r if k.endswith("_pooling_psnr")), None)
    if other:
        loss, n = _paired_loss(rows, other)
        out.update(tlc_gain_db=(1 if pooling == "tlc" else -1) * loss, variant_pairs=n)
        log.info("TLC gain %.3f dB on %d pairs (served pooling: %s)", out["tlc_gain_db"], n, pooling)
    if any("fp16_psnr" in r for r in rows):
        loss, n = _paired_loss(rows, "fp16_psnr")
        log.info("FP16 ONNX loses %.4f dB on %d pairs (limit %s dB)", loss, n, cfg.gate.max_fp16_loss_db)
        out.update(fp16_loss_db=loss, fp16_ok=loss <= cfg.gate.max_fp16_loss_db, variant_pairs=n)
    return out
