"""Training samples for ``global_view`` models: whole (or nearly whole) photos, not crops.

A global-view network sees the whole photo at working size, so it trains on the same: each
sample is a random crop covering at least ``min_crop`` of each side of a whole photo (scale
jitter), turned landscape, resized to a fixed canvas, flipped at random. The input alone
then gets a random exposure and white-balance change (in approximately linear light), so a
few pairs teach "whatever the capture, this look". Randomness comes from Python's ``random``
(as BasicSR's own augmentations), whose state a resumed training restores.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from components.data.lmdb_read import LmdbPairs

GAMMA = 2.2  # sRGB is close enough to this power law for a photometric augmentation


@dataclass(frozen=True)
class Augment:
    canvas: tuple[int, int]      # (width, height) of every sample
    min_crop: float = 0.7        # smallest crop side, as a fraction of the photo's side
    exposure_stops: float = 0.0  # input exposure changes uniformly in +-this many stops
    white_balance: float = 0.0   # input per-channel gains in exp(+-this)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrink = size[0] < img.shape[1]
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def geometric(lq: np.ndarray, gt: np.ndarray, aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    if lq.shape[0] > lq.shape[1]:
        lq, gt = np.rot90(lq), np.rot90(gt)
    h, w = lq.shape[:2]
    f = random.uniform(aug.min_crop, 1.0)
    ch, cw = max(1, round(h * f)), max(1, round(w * f))
    y, x = random.randint(0, h - ch), random.randint(0, w - cw)
    lq, gt = lq[y : y + ch, x : x + cw], gt[y : y + ch, x : x + cw]
    if random.random() < 0.5:
        lq, gt = lq[:, ::-1], gt[:, ::-1]
    if random.random() < 0.5:
        lq, gt = lq[::-1], gt[::-1]
    return _resize(np.ascontiguousarray(lq), aug.canvas), _resize(np.ascontiguousarray(gt), aug.canvas)


def photometric(lq: np.ndarray, aug: Augment) -> np.ndarray:
    """The input as if shot brighter/darker and under another light; float32 in [0, 1]."""
    if aug.exposure_stops <= 0 and aug.white_balance <= 0:
        return lq
    gains = 2.0 ** random.uniform(-aug.exposure_stops, aug.exposure_stops) * np.exp(
        [random.uniform(-aug.white_balance, aug.white_balance) for _ in range(3)])
    linear = np.power(lq, GAMMA) * gains.astype(np.float32)
    return np.power(np.clip(linear, 0.0, 1.0), 1 / GAMMA).astype(np.float32)


def augmented_pair(lq: np.ndarray, gt: np.ndarray, aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB pair -> float32 RGB pair on the canvas."""
    lq, gt = geometric(lq, gt, aug)
    return photometric(lq.astype(np.float32) / 255.0, aug), gt.astype(np.float32) / 255.0


class WholePhotoDataset:
    """A torch-style dataset over a whole-photo LMDB pair (``lq.lmdb``/``gt.lmdb``, BasicSR's
    layout), yielding BasicSR's batch dict."""

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.pairs = LmdbPairs(Path(opt["dataroot_lq"]), Path(opt["dataroot_gt"]))
        long_side = int(opt["gt_size"])
        self.aug = Augment((long_side, round(long_side * 2 / 3)), opt["min_crop"], opt["exposure_stops"],
                           opt["white_balance"])

    def input_of(self, key: str, lq: np.ndarray) -> np.ndarray:
        """What the network is given for the pair ``key`` (uint8 RGB): its input, here as it is."""
        return lq

    def __len__(self) -> int:
        return len(self.pairs.keys)

    def __getitem__(self, index: int) -> dict:
        key = self.pairs.keys[index]
        lq, gt = self.pairs.read(key)
        lq, gt = augmented_pair(self.input_of(key, lq), gt, self.aug)
        return {"lq": chw_tensor(lq), "gt": chw_tensor(gt), "lq_path": key, "gt_path": key}


def chw_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC (or NHWC) float32 array -> a torch tensor, channels first."""
    import torch

    axes = (2, 0, 1) if image.ndim == 3 else (0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(axes)))
