"""Training samples for ``global_view`` models: whole (or nearly whole) photos, not crops.

A global-view network sees the whole photo at working size, so it trains on the same: each
sample is a random crop covering at least ``min_crop`` of each side of a whole photo (scale
jitter), turned landscape, resized to a fixed canvas, flipped at random. The input alone
then gets a random exposure and white-balance change (in approximately linear light), so a
few pairs teach "whatever the capture, this look". Randomness comes from Python's ``random``
(as BasicSR's own augmentations), whose state a resumed training restores.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

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
    layout), yielding BasicSR's batch dict. Opened lazily, so each loader worker has its own."""

    def __init__(self, opt: dict) -> None:
        self.roots = {side: Path(opt[f"dataroot_{side}"]) for side in ("lq", "gt")}
        meta = (self.roots["gt"] / "meta_info.txt").read_text().splitlines()
        self.keys = [line.split(".")[0] for line in meta]
        long_side = int(opt["gt_size"])
        self.aug = Augment((long_side, round(long_side * 2 / 3)), opt["min_crop"], opt["exposure_stops"],
                           opt["white_balance"])
        self._envs: dict | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def _read(self, side: str, key: str) -> np.ndarray:
        import lmdb

        if self._envs is None:
            self._envs = {s: lmdb.open(str(p), readonly=True, lock=False, readahead=False)
                          for s, p in self.roots.items()}
        with self._envs[side].begin() as txn:
            buf = np.frombuffer(txn.get(key.encode("ascii")), np.uint8)
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]

    def __getitem__(self, index: int) -> dict:
        import torch

        key = self.keys[index]
        lq, gt = augmented_pair(self._read("lq", key), self._read("gt", key), self.aug)
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))  # noqa: E731
        return {"lq": as_tensor(lq), "gt": as_tensor(gt), "lq_path": key, "gt_path": key}
