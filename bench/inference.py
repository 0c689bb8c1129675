"""Full-resolution tiled inference speed: PyTorch eager vs onnxruntime, per tile size.

Uses the pipeline's own outputs (artifacts/train/model.pth, artifacts/export/model.onnx, so
run `dvc repro` first) and the real listing photos in ../shared/real-inputs (about 3300x2200);
without them, a synthetic photo of that size. Prints one row per runtime and tiling.

    .venv/bin/python bench/inference.py --photos 2 --tiles 256 512 --batch 4
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from components.data.imageio import load_rgb
from components.inference.onnx_session import ort_session
from components.inference.tiling import enhance_tiled
from components.model.model_io import load_model, torch_runner

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-inputs"


def photos(n: int) -> list[np.ndarray]:
    files = sorted(REAL.glob("*.jpg"))[:n]
    if files:
        return [load_rgb(f) for f in files]
    return [np.random.default_rng(i).integers(0, 256, (2200, 3300, 3), dtype=np.uint8) for i in range(n)]


def runners(train: Path, onnx: Path) -> dict:
    session = ort_session(onnx)
    return {
        "pytorch-eager": torch_runner(load_model(train / "model.pth")),
        "onnxruntime": lambda b: session.run(None, {"input": b})[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=2)
    ap.add_argument("--tiles", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--overlap", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    args = ap.parse_args()
    imgs = photos(args.photos)
    mpix = sum(i.shape[0] * i.shape[1] for i in imgs) / 1e6
    print(f"{len(imgs)} photos, {mpix:.1f} MP, torch threads {torch.get_num_threads()}")
    print(f"{'runtime':<15} {'tile':>5} {'batch':>5} {'s/photo':>8} {'MP/s':>6}")
    for name, run in runners(args.artifacts / "train", args.artifacts / "export" / "model.onnx").items():
        for tile in args.tiles:
            enhance_tiled(imgs[0][:tile, :tile], run, tile, args.overlap, args.batch)  # warm-up
            start = time.perf_counter()
            for img in imgs:
                enhance_tiled(img, run, tile, args.overlap, args.batch)
            secs = time.perf_counter() - start
            print(f"{name:<15} {tile:>5} {args.batch:>5} {secs / len(imgs):>8.2f} {mpix / secs:>6.2f}")


if __name__ == "__main__":
    main()
