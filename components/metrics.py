"""Image quality metrics on float RGB images in [0, 1] (no pretrained weights needed)."""
from __future__ import annotations

import numpy as np


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    mse = float(np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM as in Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), mean over channels."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(
        pred, target, data_range=1.0, channel_axis=2,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    ))


def ciede2000(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Per-pixel CIEDE2000 colour difference (sRGB -> CIELAB, D65): (mean, 95th percentile).

    About 1 is a just-noticeable difference; a wall drifting from white to cream is ~3-5."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    de = deltaE_ciede2000(rgb2lab(np.clip(pred, 0, 1)), rgb2lab(np.clip(target, 0, 1)))
    return float(de.mean()), float(np.percentile(de, 95))
