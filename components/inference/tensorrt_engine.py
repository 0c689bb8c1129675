"""TensorRT engines for a model version, built by onnxruntime's TensorRT execution provider.

An engine is FP16, built from the version's ONNX with one optimisation profile: up to the
serving tile batch of tiles at the serving tile size (smaller tiles, from photos smaller
than a tile, are inside the profile too). Engines only run on the GPU model and the
TensorRT/onnxruntime build that made them, so each is stored under a key naming all three:
``register`` builds one on a GPU machine, scores it on the val split by the gate's rule
(the PSNR it loses against the gated ONNX, at most ``evaluate.gate.max_fp16_loss_db``) and
ships it with the version as ``tensorrt/<key>/`` only when it passes. Serving runs TensorRT
only from such a verified engine, for its GPU and profile; it never builds one of its own.

Optional: needs the ``tensorrt`` extra (the libraries), onnxruntime-gpu and an NVIDIA GPU.
Light (numpy; onnxruntime imported when used), so serving shares it.
"""
from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from components.inference.tiling import BatchFn

log = logging.getLogger(__name__)
PROVIDER = "TensorrtExecutionProvider"
ENGINE_SUFFIXES = (".engine", ".profile", ".timing")


def gpu_name() -> str:
    """The first NVIDIA GPU's model name, '' when there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""


def unavailable_reason() -> str | None:
    """Why no engine can be built or run here, or None when it can."""
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (the optional `tensorrt` extra, for GPU machines)"
    import onnxruntime as ort

    if PROVIDER not in ort.get_available_providers():
        return "onnxruntime has no TensorrtExecutionProvider (install onnxruntime-gpu)"
    if not gpu_name():
        return "no NVIDIA GPU is visible (nvidia-smi)"
    return None


def engine_key(gpu: str, trt_version: str, ort_version: str) -> str:
    """A folder name for engines that are valid on this GPU model with these builds."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", f"{gpu}-trt{trt_version}-ort{ort_version}").strip("-")


def current_engine_key() -> str:
    import onnxruntime as ort
    import tensorrt

    return engine_key(gpu_name(), tensorrt.__version__, ort.__version__)


def provider_options(tile: int, batch: int, cache_dir: Path) -> dict:
    shape = lambda b, side: f"input:{b}x3x{side}x{side}"  # noqa: E731
    return {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache_dir),
            "trt_profile_min_shapes": shape(1, 1), "trt_profile_opt_shapes": shape(batch, tile),
            "trt_profile_max_shapes": shape(batch, tile)}


def engine_files(folder: Path) -> dict[str, float]:
    """Engine cache files and their modification times (to tell reuse from a rebuild)."""
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_mtime for p in folder.iterdir() if p.suffix in ENGINE_SUFFIXES}


def seed_cache(recorded: Path, cache: Path) -> bool:
    """Copy a version's recorded engine into a writable cache once; True if there was one."""
    if not engine_files(recorded):
        return False
    if not engine_files(cache):
        shutil.copytree(recorded, cache, dirs_exist_ok=True)
    return True


def session_providers(tile: int, batch: int, cache_dir: Path) -> list:
    """Providers for an onnxruntime session on TensorRT, CUDA for anything TensorRT lacks."""
    import tensorrt  # noqa: F401  (loads libnvinfer from the wheel, where onnxruntime looks for it)

    cache_dir.mkdir(parents=True, exist_ok=True)
    return [(PROVIDER, provider_options(tile, batch, cache_dir)), "CUDAExecutionProvider", "CPUExecutionProvider"]


def tensorrt_runner(onnx_path: Path, engine_dir: Path, tile: int, batch: int) -> BatchFn:
    """A ``tiling.BatchFn`` over the FP16 engine in ``engine_dir``, as serving runs it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=session_providers(tile, batch, engine_dir))
    return lambda x: session.run(None, {"input": x.astype(np.float32)})[0]


def build_engine(onnx_path: Path, out_dir: Path, tile: int, batch: int) -> dict:
    """Build the serving engine for ``onnx_path`` into ``out_dir`` (one full batch runs, so
    the build happens now, not on the first request) and check it against the CPU."""
    import onnxruntime as ort

    start = time.monotonic()
    trt = ort.InferenceSession(str(onnx_path), providers=session_providers(tile, batch, out_dir))
    x = np.random.default_rng(0).random((batch, 3, tile, tile), dtype=np.float32)
    got = trt.run(None, {"input": x})[0]
    cpu = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    return {"key": current_engine_key(), "tile": tile, "batch": batch, "files": sorted(engine_files(out_dir)),
            "build_seconds": round(time.monotonic() - start, 1),
            "max_abs_diff_vs_cpu": float(np.abs(got - cpu).max())}
