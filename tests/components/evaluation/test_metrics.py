"""Metrics computed in strips equal scikit-image's on the whole image, in bounded memory."""
import tracemalloc

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from components.evaluation.metrics import STRIP_ROWS, ciede2000, psnr, ssim


def pair(h: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.random((h, w, 3)).astype(np.float32)
    return np.clip(gt * 0.8 + rng.normal(0, 0.05, gt.shape), 0, 1).astype(np.float32), gt


@pytest.mark.parametrize("h, w", [(40, 60), (STRIP_ROWS + 1, 50), (3 * STRIP_ROWS + 17, 211)])
def test_strips_give_the_whole_image_result(h, w):
    pred, gt = pair(h, w)
    whole_ssim = structural_similarity(pred, gt, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False)
    de = deltaE_ciede2000(rgb2lab(pred), rgb2lab(gt))
    mse = np.mean((pred.astype(np.float64) - gt) ** 2)
    assert ssim(pred, gt) == pytest.approx(whole_ssim, abs=1e-6)
    assert ciede2000(pred, gt) == pytest.approx((de.mean(), np.percentile(de, 95)), abs=1e-4)
    assert psnr(pred, gt) == pytest.approx(10 * np.log10(1 / mse), abs=1e-9)


def test_memory_does_not_grow_with_the_photo():
    pred, gt = pair(1500, 2000)  # 3 MP: scikit-image on the whole image allocates well over 500 MB
    tracemalloc.start()
    try:
        ssim(pred, gt)
        ciede2000(pred, gt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 120 * 2**20, f"{peak / 2**20:.0f} MB"
