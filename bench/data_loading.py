"""Training samples per second: BasicSR reading sub-image LMDB vs decoding the JPEGs.

Builds pairs from ../shared/real-inputs (full-size listing photos: the photo as target, a
darker re-encode as input), converts them with the real ``lmdb`` stage, then times one
loader process drawing random training patches both ways:
- lmdb: BasicSR ``PairedImageDataset`` (io_backend lmdb) over the sub-image LMDB;
- jpeg: decode both full JPEGs with OpenCV, then the same random crop.
Per-process figures; DataLoader workers multiply both.

    .venv/bin/python bench/data_loading.py --photos 4 --patch 256 --samples 200
    .venv/bin/python bench/data_loading.py --photos 4 --patch 512 --samples 200 --crop 640
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

from components.config import load_params
from components.data.pairs import find_pairs
from components.lmdb import write_split

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-inputs"


def make_pairs(folder: Path, n: int) -> list[tuple[Path, Path]]:
    photos = sorted(REAL.glob("*.jpg"))[:n]
    if not photos:
        raise SystemExit(f"no photos in {REAL}")
    pairs = []
    for p in photos:
        tar, src = folder / f"{p.stem}_tar.jpg", folder / f"{p.stem}_src.jpg"
        Image.open(p).save(tar, quality=95)
        Image.eval(Image.open(p), lambda v: int(v * 0.6)).save(src, quality=90)
        pairs.append((src, tar))
    return pairs


def time_jpeg(pairs, patch: int, samples: int) -> float:
    start = time.perf_counter()
    for _ in range(samples):
        src, tar = random.choice(pairs)
        lq, gt = cv2.imread(str(src)), cv2.imread(str(tar))
        y, x = random.randrange(lq.shape[0] - patch), random.randrange(lq.shape[1] - patch)
        _ = lq[y : y + patch, x : x + patch].copy(), gt[y : y + patch, x : x + patch].copy()
    return samples / (time.perf_counter() - start)


def time_lmdb(root: Path, patch: int, samples: int) -> float:
    from basicsr.data.paired_image_dataset import PairedImageDataset

    ds = PairedImageDataset({
        "phase": "train", "scale": 1, "gt_size": patch, "use_hflip": True, "use_rot": True,
        "dataroot_lq": str(root / "train" / "lq.lmdb"), "dataroot_gt": str(root / "train" / "gt.lmdb"),
        "io_backend": {"type": "lmdb"}, "filename_tmpl": "{}"})
    ds[0]
    start = time.perf_counter()
    for _ in range(samples):
        ds[random.randrange(len(ds))]
    return samples / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--crop", type=int, help="sub-image size (default: params.yaml lmdb.crop_size)")
    args = ap.parse_args()
    cfg = load_params().lmdb
    if args.crop:
        cfg = cfg.model_copy(update={"crop_size": args.crop, "step": args.crop // 2})
    with tempfile.TemporaryDirectory() as tmp:
        pairs = make_pairs(Path(tmp), args.photos)
        start = time.perf_counter()
        # the stage's own writer, with every photo on the training side
        n_sub = write_split(find_pairs(tmp), Path(tmp) / "lmdb" / "train", cfg, "subimages")
        convert_s = time.perf_counter() - start
        print(f"{args.photos} photos -> {n_sub} train sub-images "
              f"({cfg.crop_size}px, step {cfg.step}) in {convert_s:.1f} s")
        jpeg = time_jpeg(pairs, args.patch, args.samples)
        lm = time_lmdb(Path(tmp) / "lmdb", args.patch, args.samples)
    print(f"patch {args.patch}: jpeg {jpeg:.1f} samples/s, lmdb {lm:.1f} samples/s ({lm / jpeg:.1f}x)")


if __name__ == "__main__":
    main()
