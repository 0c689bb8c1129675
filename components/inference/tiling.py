"""Full-resolution inference by overlapping tiles, shared by evaluation and serving.

The gate must measure exactly what is served, so both call ``enhance_tiled`` with the same
arguments; only the ``run_batch`` callable (PyTorch or onnxruntime) differs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# (N, 3, h, w) float32 in [0, 1] -> same shape
BatchFn = Callable[[np.ndarray], np.ndarray]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of ``min(tile, length)``."""
    if length <= tile:
        return [0]
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def blend_window(h: int, w: int, overlap: int) -> np.ndarray:
    """Weights that ramp up over ``overlap`` pixels at each edge, so seams fade smoothly.

    The floor keeps weights positive where only one tile covers a pixel (image borders).
    """

    def ramp(n: int) -> np.ndarray:
        r = np.ones(n, np.float32)
        k = min(overlap, n // 2)
        if k > 0:
            edge = (np.arange(k, dtype=np.float32) + 1) / (k + 1)
            r[:k] = edge
            r[n - k :] = edge[::-1]
        return r

    return np.outer(ramp(h), ramp(w)).astype(np.float32)


def iter_tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    th, tw = min(tile, h), min(tile, w)
    for y in tile_starts(h, tile, overlap):
        for x in tile_starts(w, tile, overlap):
            yield y, x, th, tw


def enhance_tiled(
    image: np.ndarray, run_batch: BatchFn, tile: int, overlap: int, batch: int
) -> np.ndarray:
    """Run ``run_batch`` over overlapping tiles of an HxWx3 image and blend the results.

    ``image`` is uint8 or float in [0, 1]; returns float32 HxWx3 clipped to [0, 1].
    All tiles have one size, so they stack into batches of up to ``batch``.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    src = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    h, w, _ = src.shape
    chw = np.ascontiguousarray(src.transpose(2, 0, 1))
    acc = np.zeros((3, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    tiles = list(iter_tiles(h, w, tile, overlap))
    win = blend_window(tiles[0][2], tiles[0][3], overlap)
    for i in range(0, len(tiles), batch):
        group = tiles[i : i + batch]
        stack = np.stack([chw[:, y : y + th, x : x + tw] for y, x, th, tw in group])
        out = np.asarray(run_batch(stack), dtype=np.float32)
        if out.shape != stack.shape:
            raise ValueError(f"model returned shape {out.shape} for input {stack.shape}")
        for (y, x, th, tw), pred in zip(group, out):
            acc[:, y : y + th, x : x + tw] += pred * win
            weight[y : y + th, x : x + tw] += win
    return np.clip((acc / weight).transpose(1, 2, 0), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
