"""One loaded model version: an onnxruntime session on the best runtime this machine has,
behind the cross-request batcher, running the inference path (mode, tiling, transfer)
evaluation scored, as recorded with the version."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnxruntime as ort

import logging
import time
from pathlib import Path

import numpy as np

from components.inference.modes import enhance
from components.inference.tensorrt_engine import (
    current_engine_key,
    engine_files,
    seed_cache,
    session_providers,
    unavailable_reason,
)
from components.registry.model_store import ModelRef
from serving.batcher import Prioritised, TileBatcher

log = logging.getLogger(__name__)
# Best first. TensorRT runs an FP16 engine built for the serving tile shapes (see
# components/inference/tensorrt_engine.py); it needs the `tensorrt` extra and onnxruntime-gpu.
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
RUNTIME_NAMES = {"TensorrtExecutionProvider": "tensorrt", "CUDAExecutionProvider": "onnxruntime-cuda",
                 "CPUExecutionProvider": "onnxruntime-cpu"}


def unverified_reason(ref: ModelRef, tile: int, tile_batch: int) -> str | None:
    """Why TensorRT may not serve this version here, or None: only an engine that register
    built and scored on the val split (``tensorrt/<key>/``), for this GPU and this profile, may.
    An engine onnxruntime would build on the spot was never checked against the gate."""
    key = current_engine_key()
    if not engine_files(ref.onnx_path.parent / "tensorrt" / key):
        return (f"version {ref.version} has no TensorRT engine verified on the val split for {key} "
                f"(its tensorrt tag: {ref.tags.get('tensorrt', 'none')})")
    verified = (ref.metadata.inference.largest_input, ref.metadata.inference.tiling.batch)
    if (tile, tile_batch) != verified:
        return f"its verified engine is for {verified[1]} tiles of {verified[0]} px, not {tile_batch} of {tile} px"
    return None


def tensorrt_cache(ref: ModelRef) -> Path:
    """This machine's writable engine cache for the version, seeded from its verified engine."""
    key = current_engine_key()
    cache = ref.onnx_path.parent / "trt-cache" / key
    seed_cache(ref.onnx_path.parent / "tensorrt" / key, cache)
    log.info("version %s: using the TensorRT engine verified for %s", ref.version, key)
    return cache


def providers_for(ref: ModelRef, runtime: str, tile: int, tile_batch: int) -> list:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = [p for p in PREFERENCE if p in available and (runtime == "auto" or RUNTIME_NAMES[p] == runtime)]
    if not wanted:
        raise RuntimeError(f"serve.runtime={runtime} is not available here (onnxruntime has {available})")
    if wanted[0] == "TensorrtExecutionProvider":
        # onnxruntime-gpu lists TensorRT even where its libraries or the GPU are missing
        reason = unavailable_reason() or unverified_reason(ref, tile, tile_batch)
        if reason is None:
            return session_providers(tile, tile_batch, tensorrt_cache(ref))
        if runtime == "tensorrt":
            raise RuntimeError(f"serve.runtime=tensorrt is not available here: {reason}")
        log.info("not serving on TensorRT: %s", reason)
        wanted.pop(0)
    return wanted + ([] if "CPUExecutionProvider" in wanted else ["CPUExecutionProvider"])


def open_session(ref: ModelRef, runtime: str, tile: int, tile_batch: int) -> tuple[ort.InferenceSession, str]:
    """(session, runtime name): ``runtime`` 'auto' takes the best available provider."""
    import onnxruntime as ort

    providers = providers_for(ref, runtime, tile, tile_batch)
    first = providers[0] if isinstance(providers[0], str) else providers[0][0]
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # FP16 pays off on CUDA; TensorRT builds its own FP16 engine from the FP32 graph
    onnx_path = ref.fp16_path if first == "CUDAExecutionProvider" and ref.fp16_path else ref.onnx_path
    session = ort.InferenceSession(str(onnx_path), opts, providers=providers)
    return session, RUNTIME_NAMES[session.get_providers()[0]]


class Engine:
    def __init__(self, ref: ModelRef, runtime: str = "auto", tile_batch: int = 0, window_ms: float = 5.0,
                 tile: int = 0) -> None:
        # ``tile`` overrides the evaluated tile size: for benchmarks only, since the gate
        # measured the model with the version's tiling
        self.ref = ref
        self.spec = ref.metadata.inference
        tiling = self.spec.tiling
        self.tiling = {**tiling.model_dump(), "tile": tile or tiling.tile}
        self.tile_batch = tile_batch or tiling.batch
        # hand the batcher several batches' worth of tiles at once, so it can mix requests
        run_tiling = {**self.tiling, "batch": 4 * self.tile_batch}
        self.spec = self.spec.model_copy(update={"tiling": self.spec.tiling.model_copy(update=run_tiling)})
        # a global_view network sees one photo at working size; TensorRT's profile must cover it
        self.session, self.runtime = open_session(ref, runtime, self.spec.largest_input, self.tile_batch)
        self.batcher = TileBatcher(self._run_batch, self.tile_batch, window_ms / 1000)

    @property
    def version(self) -> str:
        return self.ref.version

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input": batch})[0]

    def enhance(self, rgb: np.ndarray, arrived: float | None = None) -> np.ndarray:
        """The edit as uint8; the batcher serves the earliest ``arrived`` (``time.monotonic()``) first."""
        run = Prioritised(self.batcher, time.monotonic() if arrived is None else arrived)
        return enhance(rgb, run, self.spec, np.uint8)

    def warm_up(self) -> None:
        """One full batch at the serving size: builds kernels (and a TensorRT engine)."""
        if self.spec.mode == "global_view":
            side = self.spec.working_size
            self._run_batch(np.zeros((1, 3, side * 2 // 3, side), np.float32))
        else:
            tile = self.tiling["tile"]
            self._run_batch(np.zeros((self.tile_batch, 3, tile, tile), np.float32))
        log.info("version %s warm on %s", self.version, self.runtime)

    def close(self) -> None:
        self.batcher.close()
