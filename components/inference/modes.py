"""The one inference path evaluation and serving share: a photo and a model's recorded
``InferenceSpec`` in, the full-resolution edit out.

Two modes:
- ``tiled``: the network runs on overlapping full-resolution tiles (``components/inference/tiling.py``);
  compute grows with the photo, and each tile sees a sliver of it.
- ``global_view``: the network runs once on the whole photo shrunk to ``working_size`` (long
  side), and its edit reaches full resolution through a local affine colour transfer
  (``components/inference/transfer.py``); compute is fixed per photo, and the network sees all of it.

Only ``run_batch`` differs between callers (PyTorch, onnxruntime, the serving batcher).
"""
from __future__ import annotations

import numpy as np

from components.config import InferenceSpec
from components.data.imageio import working_copy
from components.inference.tiling import BatchFn, enhance_tiled, to_uint8
from components.inference.transfer import transfer_edit


def run_whole(rgb: np.ndarray, run_batch: BatchFn) -> np.ndarray:
    """The network on one HxWx3 float image, as a batch of one."""
    out = np.asarray(run_batch(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])), dtype=np.float32)
    if out.shape != (1, 3, *rgb.shape[:2]):
        raise ValueError(f"model returned shape {out.shape} for input {(1, 3, *rgb.shape[:2])}")
    return out[0].transpose(1, 2, 0)


def enhance_global_view(image: np.ndarray, run_batch: BatchFn, spec: InferenceSpec,
                        out_dtype: type = np.float32) -> np.ndarray:
    photo = to_uint8(image)
    small = working_copy(photo, spec.working_size).astype(np.float32) / 255.0
    edited = np.clip(run_whole(small, run_batch), 0.0, 1.0)
    t = spec.transfer
    return transfer_edit(photo, small, edited, t.radius, t.eps, t.strip_rows, out_dtype)


def enhance(image: np.ndarray, run_batch: BatchFn, spec: InferenceSpec, out_dtype: type = np.float32) -> np.ndarray:
    """HxWx3 (uint8, or float in [0, 1]) -> HxWx3 as ``spec`` says: float32 in [0, 1], or
    uint8 (serving: exactly ``to_uint8`` of the float result, without a full-size float copy)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    if spec.mode == "global_view":
        return enhance_global_view(image, run_batch, spec, out_dtype)
    t = spec.tiling
    return enhance_tiled(image, run_batch, t.tile, t.overlap, t.batch, out_dtype)


