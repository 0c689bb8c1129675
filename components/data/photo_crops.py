"""Training samples for ``tiled`` models: random full-resolution patches cut from whole photos.

The LMDB keeps each training photo whole, as its own file's bytes (a JPEG stays the JPEG),
so it costs what the photos cost; sub-images written out as PNG cost about six times that
(bench/README.md, the scale table). Patches are cut when a sample is drawn, anywhere in the
photo, with BasicSR's flips and transpose. Decoding a 7-megapixel pair takes about 0.1 s, so
each drawn photo yields ``crops_per_photo`` patches: 1 draws every patch from a photo of its
own (the statistics of sampling sub-images), more spread that decode over several patches
for GPUs that would otherwise wait on it. Randomness comes from Python's ``random`` (as in
BasicSR), whose state a resumed training restores.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from components.data.lmdb_read import LmdbPairs
from components.data.whole_photo_data import chw_tensor


def random_patch(lq: np.ndarray, gt: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size`` square of both images, flipped and transposed alike (BasicSR's
    ``paired_random_crop`` then ``augment`` with hflip and rot); float32 RGB in [0, 1]."""
    h, w = lq.shape[:2]
    y, x = random.randint(0, h - size), random.randint(0, w - size)
    lq, gt = lq[y : y + size, x : x + size], gt[y : y + size, x : x + size]
    if random.random() < 0.5:
        lq, gt = lq[:, ::-1], gt[:, ::-1]
    if random.random() < 0.5:
        lq, gt = lq[::-1], gt[::-1]
    if random.random() < 0.5:
        lq, gt = lq.transpose(1, 0, 2), gt.transpose(1, 0, 2)
    return lq.astype(np.float32) / 255.0, gt.astype(np.float32) / 255.0


def check_patch_fits(shapes: dict[str, tuple[int, int, int]], root: Path, size: int) -> None:
    """Every photo (key -> shape, as in ``root``'s meta_info) can give a ``size`` px patch."""
    small = [k for k, (h, w, _) in shapes.items() if min(h, w) < size]
    if small:
        raise ValueError(f"{len(small)} training photos in {root} are smaller than the {size} px patch "
                         f"(train.patch_size; e.g. {', '.join(small[:3])}): lower train.patch_size")


class PhotoCropDataset:
    """A torch-style dataset over a whole-photo LMDB pair (BasicSR's layout): item ``i`` is
    ``crops_per_photo`` patches of photo ``i``, as ``(crops, 3, size, size)`` tensors; the
    training loop (components/model/basicsr_adapter.py) flattens a batch of items into one
    batch of patches."""

    def __init__(self, opt: dict) -> None:
        self.pairs = LmdbPairs(Path(opt["dataroot_lq"]), Path(opt["dataroot_gt"]))
        self.size, self.crops = int(opt["gt_size"]), int(opt.get("crops_per_photo", 1))
        check_patch_fits(self.pairs.shapes, self.pairs.roots["gt"], self.size)

    def __len__(self) -> int:
        return len(self.pairs.keys)

    def __getitem__(self, index: int) -> dict:
        key = self.pairs.keys[index]
        lq, gt = self.pairs.read(key)
        patches = [random_patch(lq, gt, self.size) for _ in range(self.crops)]
        return {"lq": chw_tensor(np.stack([p[0] for p in patches])),
                "gt": chw_tensor(np.stack([p[1] for p in patches])), "lq_path": key, "gt_path": key}
