"""Whole-photo training samples: geometry shared by input and target, photometry on the input."""
import random

import numpy as np

from components.data.whole_photo_data import Augment, augmented_pair, geometric


def photo(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_every_sample_has_the_canvas_size_whatever_the_photo():
    aug = Augment(canvas=(60, 40), min_crop=0.6)
    random.seed(0)
    for shape in [(200, 300), (300, 200), (41, 61), (500, 120)]:
        lq, gt = augmented_pair(photo(*shape), photo(*shape), aug)
        assert lq.shape == gt.shape == (40, 60, 3) and lq.dtype == np.float32


def test_input_and_target_get_the_same_crop_and_flips():
    img = photo(120, 180)
    random.seed(1)
    for _ in range(20):
        lq, gt = geometric(img, img.copy(), Augment(canvas=(90, 60), min_crop=0.5))
        assert np.array_equal(lq, gt)


def test_exposure_and_white_balance_change_only_the_input():
    img = photo(90, 120)
    aug = Augment(canvas=(120, 80), min_crop=1.0, exposure_stops=1.0, white_balance=0.2)
    random.seed(2)
    changed = []
    for _ in range(10):
        lq, gt = augmented_pair(img, img, aug)
        changed.append(np.abs(lq - gt).mean())
        assert 0 <= lq.min() and lq.max() <= 1
    assert min(changed) >= 0 and max(changed) > 0.02
    random.seed(2)
    plain = augmented_pair(img, img, Augment(canvas=(120, 80), min_crop=1.0))
    assert np.array_equal(plain[0], plain[1])  # without photometric jitter, input == target here
