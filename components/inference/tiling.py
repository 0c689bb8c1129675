"""Full-resolution inference by overlapping tiles, shared by evaluation and serving.

The gate must measure exactly what is served, so both call ``enhance_tiled`` with the same
arguments; only the ``run_batch`` callable (PyTorch or onnxruntime) differs.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Protocol

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


class Submitter(Protocol):
    """A ``BatchFn`` that can also take tiles without waiting (the serving batcher): the
    callable returned by ``submit`` gives their outputs when called."""

    def __call__(self, tiles: np.ndarray) -> np.ndarray: ...

    def submit(self, tiles: np.ndarray) -> Callable[[], np.ndarray]: ...


LOOKAHEAD = 2  # batches handed over before the first one's outputs are awaited


def _outputs(image: np.ndarray, run_batch: BatchFn, tiles: list, batch: int) -> Iterator[np.ndarray]:
    """Each tile's output in ``tiles`` order, running ``batch`` tiles a call. A ``Submitter``
    gets the next batches before this one is awaited, so the model never waits on our blending."""
    submit = getattr(run_batch, "submit", None) or partial(_run_now, run_batch)
    scale = np.float32(1 / 255) if image.dtype == np.uint8 else None
    waiting: deque = deque()
    for i in range(0, len(tiles), batch):
        stack = np.stack([image[y : y + th, x : x + tw].transpose(2, 0, 1) for y, x, th, tw in tiles[i : i + batch]])
        stack = stack.astype(np.float32) / 255.0 if scale is not None else stack.astype(np.float32, copy=False)
        waiting.append((stack.shape, submit(stack)))
        if len(waiting) > LOOKAHEAD:
            yield from _checked(*waiting.popleft())
    while waiting:
        yield from _checked(*waiting.popleft())


def _run_now(run_batch: BatchFn, tiles: np.ndarray) -> Callable[[], np.ndarray]:
    out = run_batch(tiles)
    return lambda: out


def _checked(shape: tuple, result: Callable[[], np.ndarray]) -> Iterator[np.ndarray]:
    out = np.asarray(result(), dtype=np.float32)
    if out.shape != shape:
        raise ValueError(f"model returned shape {out.shape} for input {shape}")
    yield from out


def _finish(acc: np.ndarray, weight: np.ndarray, dst: np.ndarray) -> None:
    """Blended rows into ``dst``: float in [0, 1], or uint8 rounded as ``to_uint8`` does."""
    rows = np.clip(acc / weight[..., None], 0.0, 1.0)
    dst[...] = rows if dst.dtype != np.uint8 else to_uint8(rows)


def enhance_tiled(image: np.ndarray, run_batch: BatchFn, tile: int, overlap: int, batch: int,
                  out_dtype: type = np.float32) -> np.ndarray:
    """Run ``run_batch`` over overlapping tiles of an HxWx3 image and blend the results.

    ``image`` is uint8 or float in [0, 1]; returns HxWx3 ``out_dtype`` (float32 clipped to
    [0, 1], or uint8). All tiles have one size, so they stack into batches of up to ``batch``.
    Memory beyond the input and output is one band of tile rows: tiles go in row order, and
    rows no later tile touches are finished as soon as the next tile row starts.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    h, w, _ = image.shape
    tiles = list(iter_tiles(h, w, tile, overlap))
    th, tw = tiles[0][2], tiles[0][3]
    win = blend_window(th, tw, overlap)[..., None]
    out: np.ndarray = np.empty((h, w, 3), out_dtype)
    acc, weight = np.zeros((th, w, 3), np.float32), np.zeros((th, w), np.float32)
    top = 0  # the image row that acc's first row holds
    for (y, x, _, _), pred in zip(tiles, _outputs(image, run_batch, tiles, batch), strict=True):
        if y != top:  # a new tile row: the rows above it are final
            done = y - top
            _finish(acc[:done], weight[:done], out[top:y])
            acc[: th - done], weight[: th - done] = acc[done:].copy(), weight[done:].copy()
            acc[th - done :], weight[th - done :] = 0, 0
            top = y
        acc[:, x : x + tw] += pred.transpose(1, 2, 0) * win
        weight[:, x : x + tw] += win[..., 0]
    _finish(acc, weight, out[top:])
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] to 8-bit, rounded (a uint8 photo passes as it is): photos are 8-bit and
    evaluation holds them as float, so every caller rounds the same pixels the same way."""
    if image.dtype == np.uint8:
        return image
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
