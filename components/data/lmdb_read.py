"""Reading the LMDBs the ``lmdb`` stage writes (BasicSR's layout), one image at a time.

Light on purpose (lmdb, OpenCV, NumPy): evaluation, export checks, training monitors and the
champion check read the val split without the stage's writing machinery."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import lmdb
import numpy as np


def _decode(buf: np.ndarray, path: Path, key: str) -> np.ndarray:
    """An LMDB value's PNG as RGB uint8; a value that does not decode names its database."""
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: image {key!r} does not decode; run the lmdb stage again")
    return bgr[..., ::-1]


def iter_lmdb(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(key, RGB float32 in [0, 1]) for each image of a BasicSR LMDB, one at a time."""
    keys = [line.split(".")[0] for line in (path / "meta_info.txt").read_text().splitlines()]
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            for key in keys:
                value = txn.get(key.encode("ascii"))
                if value is None:
                    raise KeyError(f"{path} has no image {key!r} (meta_info.txt lists it): run the lmdb stage again")
                yield key, _decode(np.frombuffer(value, np.uint8), path, key).astype(np.float32) / 255.0
    finally:
        env.close()


def iter_pairs(split: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(key, input, target) of a split folder's ``lq.lmdb``/``gt.lmdb``, one pair at a time."""
    for (key, lq), (key_gt, gt) in zip(iter_lmdb(split / "lq.lmdb"), iter_lmdb(split / "gt.lmdb"), strict=True):
        if key != key_gt:
            raise ValueError(f"{split}: input {key} is paired with target {key_gt}; run the lmdb stage again")
        yield key, lq, gt


def lmdb_shapes(path: Path) -> dict[str, tuple[int, int, int]]:
    """Key -> (h, w, c) from an LMDB's meta_info.txt, without opening the database."""
    shapes: dict[str, tuple[int, int, int]] = {}
    for line in (path / "meta_info.txt").read_text().splitlines():
        name, shape, _ = line.split(" ")
        h, w, c = (int(v) for v in shape.strip("()").split(","))
        shapes[name.split(".")[0]] = (h, w, c)
    return shapes


class LmdbPairs:
    """One split's ``lq.lmdb``/``gt.lmdb`` (shared keys), read a pair at a time as uint8 RGB:
    what the training datasets sample from. The databases are opened on first read in each
    process, so DataLoader workers never share a handle inherited from their parent."""

    def __init__(self, lq: Path, gt: Path) -> None:
        self.roots = {"lq": lq, "gt": gt}
        self.shapes = lmdb_shapes(gt)
        self.keys = list(self.shapes)
        self._envs: dict | None = None
        self._pid = 0

    def read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        if self._envs is None or self._pid != os.getpid():
            self._envs = {side: lmdb.open(str(root), readonly=True, lock=False, readahead=False)
                          for side, root in self.roots.items()}
            self._pid = os.getpid()
        images = []
        for side in ("lq", "gt"):
            with self._envs[side].begin() as txn:
                value = txn.get(key.encode("ascii"))
            if value is None:
                raise KeyError(f"{self.roots[side]} has no image {key!r} (meta_info.txt lists it): "
                               "run the lmdb stage again")
            images.append(_decode(np.frombuffer(value, np.uint8), self.roots[side], key))
        if images[0].shape != images[1].shape:
            raise ValueError(f"{key}: input {images[0].shape} and target {images[1].shape} differ in "
                             f"{self.roots['lq'].parent}")
        return images[0], images[1]
