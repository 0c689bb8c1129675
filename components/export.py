"""Stage ``export``: ONNX with dynamic batch, height and width, checked against PyTorch.

With ``export.tlc`` the channel attention pools locally (TLC, see ``nafnet_arch``), so what
is exported, evaluated and served sees patch-sized statistics on any tile or photo.

The check runs onnxruntime (graph optimisations on, as serving runs it) on a random batch
and on a crop of a real validation image, at a size that is not a multiple of the network's
stride, and fails the stage if any output differs from PyTorch by more than ``export.atol``.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from components.config import ExportConfig, InferenceSpec
from components.data.lmdb_read import iter_lmdb
from components.data.splits import FOLDS_DIR, fold_dirs
from components.errors import StageFailed
from components.inference.onnx_session import ort_runner, ort_session
from components.model.ensemble import Ensemble
from components.model.model_io import checkpoint_view, is_preset_only, load_model, tlc_window, torch_runner
from components.model.onnx_export import OnnxExporter, traces_folder
from components.records import EXPORT_RECORD, ExportRecord, write_record
from components.stage import run_stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportPaths:
    train: Path
    lmdb: Path
    out: Path


def check_inputs(lmdb_dir: Path, size: int) -> dict[str, np.ndarray]:
    """A random batch and a real val crop, both with odd sizes to exercise padding."""
    rng = np.random.default_rng(0)
    inputs = {"random": rng.random((2, 3, size + 3, size - 5), dtype=np.float32)}
    real = next(iter_lmdb(lmdb_dir / "val" / "lq.lmdb"))[1]
    crop = real[: size + 1, : size + 7].transpose(2, 0, 1)[None]
    inputs["real"] = np.ascontiguousarray(crop, dtype=np.float32)
    return inputs


def compare(model: torch.nn.Module, onnx_path: Path, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    session = ort_session(onnx_path)
    diffs = {}
    for name, x in inputs.items():
        with torch.inference_mode():
            expected = model(torch.from_numpy(x)).numpy()
        got = session.run(None, {"input": x})[0]
        if got.shape != expected.shape:
            raise StageFailed(f"onnxruntime returned {got.shape} for {name} input, PyTorch {expected.shape}")
        diffs[name] = float(np.abs(got - expected).max())
    return diffs


def composite_diff(model: torch.nn.Module, onnx_path: Path, lmdb_dir: Path, spec: InferenceSpec) -> float:
    """Max |onnxruntime - PyTorch| of the whole served composite (network at working size, then
    the transfer) on the first val photo at full resolution: what the gate scores and serving sends."""
    from components.inference.modes import enhance

    photo = next(iter_lmdb(lmdb_dir / "val" / "lq.lmdb"))[1]
    expected = enhance(photo, torch_runner(model), spec)
    return float(np.abs(enhance(photo, ort_runner(onnx_path), spec) - expected).max())


def export_fp16(onnx_path: Path, model: torch.nn.Module, inputs: dict[str, np.ndarray]) -> tuple[Path, dict]:
    """An FP16 copy (inputs and outputs stay float32) for GPU serving, and its difference
    from PyTorch. Whether it keeps quality is measured by ``evaluate`` on the val split."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    path = onnx_path.with_name("model_fp16.onnx")
    onnx.save(convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True), str(path))
    return path, compare(model, path, inputs)


def export_members(cfg: ExportConfig, paths: ExportPaths, inputs: dict[str, np.ndarray],
                   exporter: OnnxExporter) -> tuple[list[str], dict]:
    """Each fold model of a cross-validated ensemble as its own ONNX (``folds/<i>/model.onnx``):
    the gate scores fold i's model as served on the pairs it did not train on. Their paths
    (relative to the export folder) and differences from PyTorch."""
    members, diffs = [], {}
    shutil.rmtree(paths.out / FOLDS_DIR, ignore_errors=True)  # those of an earlier, cross-validated model
    for i, member in enumerate(fold_dirs(paths.train)):
        window = tlc_window(member / "model.pth", cfg.tlc_scale)
        model = load_model(member / "model.pth", tlc_window=window if cfg.tlc else 0)
        onnx_path = paths.out / FOLDS_DIR / member.name / "model.onnx"
        exporter.export(model, onnx_path)
        diffs.update({f"fold{i}_{k}": v for k, v in compare(model, onnx_path, inputs).items()})
        members.append(str(onnx_path.relative_to(paths.out)))
    return members, diffs


def check_trained_for(checkpoint: Path, spec: InferenceSpec) -> None:
    """A model learns one mode (tiles or the whole photo): refuse to ship it under the other."""
    trained = checkpoint_view(checkpoint).mode
    if trained != spec.mode:
        raise StageFailed(f"{checkpoint} was trained for inference.mode={trained}, but params.yaml says "
                          f"{spec.mode}: run train again (dvc repro)")


def network_count(model: torch.nn.Module, checkpoint: Path) -> int:
    """Networks the served model runs: an ensemble's members, 0 for a preset whose network is off."""
    if is_preset_only(checkpoint):
        return 0
    return len(model.members) if isinstance(model, Ensemble) else 1


def run_export(cfg: ExportConfig, paths: ExportPaths) -> ExportRecord:
    check_trained_for(paths.train / "model.pth", cfg.inference)
    window = tlc_window(paths.train / "model.pth", cfg.tlc_scale)
    model = load_model(paths.train / "model.pth", tlc_window=window if cfg.tlc else 0)
    onnx_path = paths.out / "model.onnx"
    exporter = OnnxExporter(cfg.opset, traces_folder())
    exporter.export(model, onnx_path)
    inputs = check_inputs(paths.lmdb, cfg.check_size)
    diffs = compare(model, onnx_path, inputs)
    members, member_diffs = export_members(cfg, paths, inputs, exporter)
    diffs.update(member_diffs)
    if cfg.inference.mode == "global_view":
        diffs["composite"] = composite_diff(model, onnx_path, paths.lmdb, cfg.inference)
    fp16_path, fp16_diffs = export_fp16(onnx_path, model, inputs) if cfg.fp16 else (None, None)
    result = ExportRecord(onnx=str(onnx_path), inference=cfg.inference, max_abs_diff=diffs, atol=cfg.atol,
                          opset=cfg.opset, pooling="tlc" if cfg.tlc else "global", tlc_window=window,
                          fp16_onnx=fp16_path.name if fp16_path else None, fp16_max_abs_diff=fp16_diffs,
                          members=members, networks=network_count(model, paths.train / "model.pth"))
    write_record(paths.out / EXPORT_RECORD, result)
    worst = max(diffs.values())
    if worst > cfg.atol:
        raise StageFailed(f"onnxruntime differs from PyTorch by {worst:.2e} > atol {cfg.atol:.1e}: {diffs}")
    log.info("ONNX matches PyTorch: %s", diffs)
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage("export", ExportPaths, run_export, argv)


if __name__ == "__main__":
    raise SystemExit(main())
