"""Out-of-fold calibration of a k-fold run's outputs, measured before building it.

A model trained with a pixel loss on a few pairs comes out flatter than the targets (blacks
lifted, highlights held down). If that were a bias shared by every photo, per-channel tone curves
fitted from the model's outputs to the targets on the *other* folds' photos (each output already
made by a model that did not see its photo) would correct it on this fold. This scores that,
fully (``1.0``) and half-way (``0.5``), and a luminance-only version (one curve, chroma kept).

    .venv/bin/python bench/kfold.py --set fivek_expertC -S profile=cpu --save-outputs /tmp/out
    .venv/bin/python bench/calibrate_outputs.py --set fivek_expertC /tmp/out

The folds are ``bench/kfold.py``'s (same ``--k`` and ``--seed``), so each curve is fitted on
outputs of photos outside the fold it is applied to.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
METRICS = ("psnr", "ciede2000_mean", "contrast_error", "cast", "blown_highlights")


def luminance_only(out: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """The mean of the three curves on the photo's grey, the photo's chroma (out - grey) kept."""
    from components.model.baseline import apply_tone_curves

    grey_curve = np.repeat(curves.mean(0, keepdims=True), 3, 0)
    grey = out.mean(-1, keepdims=True).repeat(3, -1)
    return np.clip(apply_tone_curves(grey, grey_curve) + out - grey, 0, 1)


def main() -> None:
    from average_outputs import PAIRS, pair
    from kfold import folds

    from components.data.imageio import working_copy
    from components.evaluation.scoring import score_image
    from components.model.baseline import apply_tone_curves, fit_tone_curves

    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("run", type=Path, help="a --save-outputs folder of bench/kfold.py")
    args = ap.parse_args()
    root = Path(args.set) if Path(args.set).is_dir() else PAIRS / args.set
    keys = sorted(p.stem for p in args.run.glob("*.npy"))
    photos = {k: (*pair(root, k), np.clip(np.load(args.run / f"{k}.npy").astype(np.float32), 0, 1)) for k in keys}
    rows: dict[str, list[dict]] = {"as served": [], "calibrated": [], "half calibrated": [], "luminance only": []}
    for fold in folds(keys, args.k, args.seed):
        curves = fit_tone_curves((working_copy(photos[k][2], 512), working_copy(photos[k][1], 512))
                                 for k in keys if k not in fold)
        for k in fold:
            lq, gt, out = photos[k]
            full = np.clip(apply_tone_curves(out, curves), 0, 1)
            for name, image in (("as served", out), ("calibrated", full), ("half calibrated", 0.5 * (full + out)),
                                ("luminance only", luminance_only(out, curves))):
                rows[name].append(score_image(image, gt, lq))
    for name, scored in rows.items():
        print(f"{name:16s}", "  ".join(f"{m} {np.mean([r[m] for r in scored]):.4g}" for m in METRICS))


if __name__ == "__main__":
    main()
