"""How much a perfect working-size edit loses on its way to full resolution through the
transfer (components/inference/transfer.py): the target shrunk to the working size, carried back by the
transfer applied to the full-resolution input, scored against the full-resolution target.

    .venv/bin/python bench/transfer_ceiling.py --set fivek_expertC --sizes 256 384 --radii 4 8 16 --eps 1e-4 1e-3 1e-2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    from components.data.imageio import load_rgb, working_copy
    from components.evaluation.metrics import psnr
    from components.inference.transfer import transfer_edit

    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 384])
    ap.add_argument("--radii", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--eps", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    args = ap.parse_args()
    folder = REPO.parent / "shared" / "real-pairs" / args.set
    pairs = [(load_rgb(p), load_rgb(folder / "target" / p.name)) for p in sorted((folder / "input").glob("*.png"))]
    for size in args.sizes:
        for radius in args.radii:
            for eps in args.eps:
                scores = []
                for full_in, full_out in pairs:
                    small_in = working_copy(full_in, size).astype(np.float32) / 255
                    small_out = working_copy(full_out, size).astype(np.float32) / 255
                    out = transfer_edit(full_in, small_in, small_out, radius, eps)
                    scores.append(psnr(out, full_out.astype(np.float32) / 255))
                print(f"working size {size:4d}  radius {radius:3d}  eps {eps:.0e}  {np.mean(scores):.2f} dB", flush=True)


if __name__ == "__main__":
    main()
