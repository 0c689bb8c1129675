"""Reading the LMDBs the ``lmdb`` stage writes (BasicSR's layout), one image at a time.

Light on purpose (lmdb, OpenCV, NumPy): evaluation, export checks, training monitors and the
champion check read the val split without the stage's writing machinery."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import lmdb
import numpy as np


def iter_lmdb(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(key, RGB float32 in [0, 1]) for each image of a BasicSR LMDB, one at a time."""
    keys = [line.split(".")[0] for line in (path / "meta_info.txt").read_text().splitlines()]
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        with env.begin() as txn:
            for key in keys:
                buf = np.frombuffer(txn.get(key.encode("ascii")), np.uint8)
                yield key, cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    finally:
        env.close()


def read_lmdb(path: Path) -> dict[str, np.ndarray]:
    """All images of a BasicSR LMDB as RGB float32 in [0, 1], keyed as in meta_info.txt."""
    return dict(iter_lmdb(path))


def lmdb_shapes(path: Path) -> dict[str, tuple[int, int, int]]:
    """Key -> (h, w, c) from an LMDB's meta_info.txt, without opening the database."""
    shapes = {}
    for line in (path / "meta_info.txt").read_text().splitlines():
        name, shape, _ = line.split(" ")
        shapes[name.split(".")[0]] = tuple(int(v) for v in shape.strip("()").split(","))
    return shapes
