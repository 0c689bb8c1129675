"""onnxruntime sessions on CPU for the exported model: how evaluation, the champion check and
the review run an ONNX as serving does (``serving/engine.py`` picks GPU runtimes on top).
Light on purpose (NumPy + onnxruntime, no torch)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from components.inference.tiling import BatchFn

if TYPE_CHECKING:
    import onnxruntime as ort

from pathlib import Path

import numpy as np


def ort_session(path: Path, providers: list[str] | None = None) -> ort.InferenceSession:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])


def ort_runner(onnx_path: Path) -> BatchFn:
    """A ``tiling.BatchFn`` over an ONNX model in onnxruntime (CPU), as serving runs it."""
    session = ort_session(onnx_path)
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch.astype(np.float32)})[0]
