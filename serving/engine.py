"""One loaded model version: an onnxruntime session behind the shared tiling code."""
from __future__ import annotations

import threading

import numpy as np

from components.tiling import enhance_tiled, to_uint8
from components.model_store import ModelRef


class Engine:
    def __init__(self, ref: ModelRef, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(ref.onnx_path), opts,
                                            providers=[p for p in wanted if p in available])
        self.ref = ref
        self._lock = threading.Lock()  # one tiled image at a time per session on CPU

    @property
    def version(self) -> str:
        return self.ref.version

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input": batch})[0]

    def enhance(self, rgb: np.ndarray) -> np.ndarray:
        t = self.ref.tiling
        with self._lock:
            out = enhance_tiled(rgb, self._run_batch, t["tile"], t["overlap"], t["batch"])
        return to_uint8(out)

    def warm_up(self) -> None:
        self.enhance(np.zeros((32, 32, 3), np.uint8))
