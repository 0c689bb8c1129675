"""Training patches per second for tiled models, by ``train.crops_per_photo``.

Builds pairs from ../shared/real-inputs (full-size listing photos: the photo as target, a
darker re-encode as input), converts them with the real ``lmdb`` stage (whole photos as their
own JPEG bytes), then times one loader process drawing random patches through
``PhotoCropDataset``, which decodes a photo pair per item and cuts ``crops_per_photo``
patches from it. Per-process figures; DataLoader workers multiply them.

    .venv/bin/python bench/data_loading.py --photos 4 --patch 256 --items 40
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components.config import load_params
from components.data.pairs import find_pairs
from components.data.photo_crops import PhotoCropDataset
from components.lmdb import write_split

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-inputs"


def make_pairs(folder: Path, n: int) -> None:
    photos = sorted(REAL.glob("*.jpg"))[:n]
    if not photos:
        raise SystemExit(f"no photos in {REAL}")
    for p in photos:
        Image.open(p).save(folder / f"{p.stem}_tar.jpg", quality=95)
        Image.eval(Image.open(p), lambda v: int(v * 0.6)).save(folder / f"{p.stem}_src.jpg", quality=90)


def patches_per_second(split: Path, patch: int, crops: int, items: int) -> float:
    ds = PhotoCropDataset({"dataroot_lq": str(split / "lq.lmdb"), "dataroot_gt": str(split / "gt.lmdb"),
                           "gt_size": patch, "crops_per_photo": crops})
    ds[0]  # open the databases
    start = time.perf_counter()
    for _ in range(items):
        ds[random.randrange(len(ds))]
    return items * crops / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--items", type=int, default=40, help="photos drawn per setting")
    ap.add_argument("--crops", type=int, nargs="+", default=[1, 4, 8])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_pairs(Path(tmp), args.photos)
        split = Path(tmp) / "lmdb" / "train"
        params = load_params()
        write_split(find_pairs(tmp), {"whole": split}, params.lmdb, int(params.validate_.max_megapixels * 1e6))
        print("| crops_per_photo | patches/s (one process) |\n|---:|---:|")
        for crops in args.crops:
            print(f"| {crops} | {patches_per_second(split, args.patch, crops, args.items):.1f} |")


if __name__ == "__main__":
    main()
