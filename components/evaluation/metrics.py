"""Image quality metrics on float RGB images in [0, 1] (no pretrained weights needed).

Computed in strips of ``STRIP_ROWS`` rows, with the same result as on the whole image:
scikit-image works in float64 with dozens of temporaries, which on a 7.3 MP photo took over
a gigabyte per call; in strips it is a few hundred megabytes whatever the photo's size.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

STRIP_ROWS = 128
SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5
SSIM_PAD = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # scikit-image's window radius, and the border it ignores


def _strips(height: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, int]]:
    stop = height if stop is None else stop
    for a in range(start, stop, STRIP_ROWS):
        yield a, min(a + STRIP_ROWS, stop)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    sse = sum(float(np.sum((pred[a:b].astype(np.float64) - target[a:b].astype(np.float64)) ** 2))
              for a, b in _strips(pred.shape[0]))
    mse = sse / pred.size
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM as in Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), mean over channels,
    border of the window radius ignored (as scikit-image does)."""
    from skimage.metrics import structural_similarity

    h, w = pred.shape[:2]
    if h <= 2 * SSIM_PAD + 1 or h <= STRIP_ROWS:  # small: in one go (and scikit-image's own checks)
        return float(structural_similarity(pred, target, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                           sigma=SSIM_SIGMA, use_sample_covariance=False))
    total, count = 0.0, 0
    for a, b in _strips(h, SSIM_PAD, h - SSIM_PAD):
        lo, hi = max(0, a - SSIM_PAD), min(h, b + SSIM_PAD)  # rows the window reaches: exact inside
        _, smap = structural_similarity(pred[lo:hi], target[lo:hi], data_range=1.0, channel_axis=2, full=True,
                                        gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False)
        inner = smap[a - lo:b - lo, SSIM_PAD:w - SSIM_PAD]
        total += float(inner.sum(dtype=np.float64))
        count += inner.size
    return total / count


def ciede2000_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference (sRGB -> CIELAB, D65), float32 HxW.

    About 1 is a just-noticeable difference; a wall drifting from white to cream is ~3-5."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    de = np.empty(pred.shape[:2], np.float32)
    for a, b in _strips(pred.shape[0]):
        de[a:b] = deltaE_ciede2000(rgb2lab(np.clip(pred[a:b], 0, 1)), rgb2lab(np.clip(target[a:b], 0, 1)))
    return de


def ciede2000(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """CIEDE2000 colour difference over the image: (mean, 95th percentile)."""
    de = ciede2000_map(pred, target)
    return float(de.mean(dtype=np.float64)), float(np.percentile(de, 95))
