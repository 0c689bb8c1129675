"""Stage ``lmdb``: write train/val pairs into LMDBs in the layout BasicSR reads.

Each LMDB folder holds ``data.mdb`` and ``meta_info.txt`` with lines ``<key>.png (h,w,c) <level>``
(what ``basicsr.utils.lmdb_util`` writes), values are PNG bytes in BGR channel order, and the
input (``lq``) and target (``gt``) databases share their keys, so BasicSR's
``PairedImageDataset`` with ``io_backend: lmdb`` reads them unchanged.
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import lmdb
import numpy as np

from components.config import LmdbConfig
from components.imageio import load_rgb
from components.pairs import Pair, find_pairs
from components.stage import StageFailed, run_stage, write_json

MAP_SIZE = 1 << 40  # virtual reservation only; LMDB files grow to what is written


@dataclass(frozen=True)
class LmdbPaths:
    data: Path
    out: Path


def split_of(pair_id: str, val_fraction: float) -> str:
    """'train' or 'val' as a pure function of the id: new data never moves old pairs."""
    bucket = int(hashlib.sha256(pair_id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < val_fraction else "train"


def lmdb_key(pair_id: str) -> str:
    # BasicSR derives keys with line.split(".")[0], so keys must be ASCII without dots.
    key = "".join(c if c.isalnum() or c in "-_" else "_" for c in pair_id)
    return key.encode("ascii", "replace").decode("ascii")


def write_lmdb(path: Path, items: list[tuple[str, np.ndarray]], level: int) -> None:
    """Write (key, RGB uint8 image) items; the folder is built beside and moved in whole."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = lmdb.open(str(tmp), map_size=MAP_SIZE)
    meta = []
    with env.begin(write=True) as txn:
        for key, rgb in items:
            ok, png = cv2.imencode(".png", rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, level])
            if not ok:
                raise RuntimeError(f"PNG encoding failed for {key}")
            txn.put(key.encode("ascii"), png.tobytes())
            h, w, c = rgb.shape
            meta.append(f"{key}.png ({h},{w},{c}) {level}\n")
    env.close()
    (tmp / "meta_info.txt").write_text("".join(meta), encoding="ascii")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def read_lmdb(path: Path) -> dict[str, np.ndarray]:
    """All images of a BasicSR LMDB as RGB float32 in [0, 1], keyed as in meta_info.txt."""
    keys = [line.split(".")[0] for line in (path / "meta_info.txt").read_text().splitlines()]
    images = {}
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        for key in keys:
            buf = np.frombuffer(txn.get(key.encode("ascii")), np.uint8)
            images[key] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    env.close()
    return images


def split_pairs(pairs: list[Pair], val_fraction: float) -> dict[str, list[Pair]]:
    splits: dict[str, list[Pair]] = {"train": [], "val": []}
    for pair in pairs:
        splits[split_of(pair.pair_id, val_fraction)].append(pair)
    for name, members in splits.items():
        if not members:
            raise StageFailed(f"the {name} split is empty: {len(pairs)} pairs are too few")
    return splits


def run_lmdb(cfg: LmdbConfig, paths: LmdbPaths) -> dict:
    splits = split_pairs(find_pairs(paths.data), cfg.val_fraction)
    summary = {}
    for split, pairs in splits.items():
        for role, attr in (("lq", "input"), ("gt", "target")):
            items = [(lmdb_key(p.pair_id), load_rgb(getattr(p, attr))) for p in pairs]
            write_lmdb(paths.out / split / f"{role}.lmdb", items, cfg.png_compression)
        summary[split] = sorted(p.pair_id for p in pairs)
    write_json(paths.out / "splits.json", summary)
    return {split: len(ids) for split, ids in summary.items()}


def main(argv: list[str] | None = None) -> int:
    return run_stage("lmdb", LmdbPaths, run_lmdb, argv)


if __name__ == "__main__":
    raise SystemExit(main())
