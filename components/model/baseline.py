"""The classical baseline a learned model must beat: global per-channel tone curves.

For each channel, the curve maps an input level (0-255) to the mean target value seen at
that level over the training pairs, made monotone. That captures exposure, contrast, black
level and white balance as one global edit, which is what a preset in a photo editor does.
A model that cannot beat it has learned nothing a curves adjustment would not give.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LEVELS = 256


def fit_tone_curves(pairs: Iterable[tuple[np.ndarray, np.ndarray]], max_pixels_per_image: int = 250_000) -> np.ndarray:
    """(3, 256) curves from (input, target) float RGB pairs in [0, 1]; large images are
    subsampled on a regular grid, enough for 256 levels and cheap at 7 MP."""
    sums, counts = np.zeros((3, LEVELS)), np.zeros((3, LEVELS))
    for lq, gt in pairs:
        step = max(1, int(np.sqrt(lq.shape[0] * lq.shape[1] / max_pixels_per_image)))
        levels = np.clip(np.rint(lq[::step, ::step] * 255), 0, 255).astype(np.int64)
        values = gt[::step, ::step]
        for c in range(3):
            sums[c] += np.bincount(levels[..., c].ravel(), values[..., c].ravel(), LEVELS)
            counts[c] += np.bincount(levels[..., c].ravel(), minlength=LEVELS)
    curves = np.empty((3, LEVELS))
    x = np.arange(LEVELS)
    for c in range(3):
        seen = counts[c] > 0
        if not seen.any():
            raise ValueError("no training pixels to fit tone curves on")
        curves[c] = np.maximum.accumulate(np.interp(x, x[seen], sums[c][seen] / counts[c][seen]))
    return curves.astype(np.float32)


def apply_tone_curves(rgb: np.ndarray, curves: np.ndarray) -> np.ndarray:
    levels = np.clip(np.rint(rgb * 255), 0, 255).astype(np.int64)
    return np.stack([curves[c][levels[..., c]] for c in range(3)], axis=-1)
