"""Training-free presets, k-fold on a real pair set: what the gate's baseline is chosen from.

Each fold's presets are fitted on the other folds (``components/model/presets.py``) and scored
on it at the set's own resolution; ``chosen`` is the candidate the leave-one-out on the
training folds picks, i.e. what the gate uses. ``pooled curves`` is the earlier baseline
(one curve fitted over all training pixels at once), kept for comparison. Seconds, no training.

    .venv/bin/python bench/presets.py --set fivek_expertC
    .venv/bin/python bench/presets.py --set lol_eval15
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_pairs(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def read(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255

    return {p.name: (read(p), read(folder / "target" / p.name)) for p in sorted((folder / "input").iterdir())}


def pooled_curves(pairs) -> np.ndarray:
    """The earlier fit: per level, the mean target over every training pixel at that level."""
    sums, counts = np.zeros((3, 256)), np.zeros((3, 256))
    for lq, gt in pairs:
        levels = np.clip(np.rint(lq * 255), 0, 255).astype(np.int64)
        for c in range(3):
            sums[c] += np.bincount(levels[..., c].ravel(), gt[..., c].ravel(), 256)
            counts[c] += np.bincount(levels[..., c].ravel(), minlength=256)
    x = np.arange(256)
    return np.stack([np.maximum.accumulate(np.interp(x, x[counts[c] > 0], sums[c][counts[c] > 0] / counts[c][counts[c] > 0]))
                     for c in range(3)])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


def main() -> None:
    from bench.kfold import PAIRS, folds
    from components.model.baseline import apply_tone_curves
    from components.model.presets import KINDS, apply_preset, fit_preset

    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_pairs(PAIRS / args.set)
    scores: dict[str, list[float]] = {}
    for i, val in enumerate(folds(list(data), args.k, args.seed)):
        train = [data[n] for n in data if n not in val]
        preset, pooled = fit_preset(train), pooled_curves(train)
        print(f"fold {i}: chosen {preset.kind}; leave-one-out on the training folds: "
              + ", ".join(f"{k} {v:.2f}" for k, v in preset.loo_psnr.items()))
        curves, quantiles = np.asarray(preset.curves), np.asarray(preset.target_quantiles)
        for name in val:
            lq, gt = data[name]
            scores.setdefault("identity", []).append(psnr(lq, gt))
            scores.setdefault("pooled curves", []).append(psnr(apply_tone_curves(lq, pooled), gt))
            for kind in KINDS:
                scores.setdefault(kind, []).append(psnr(apply_preset(kind, lq, curves, quantiles), gt))
            scores.setdefault("chosen", []).append(psnr(preset.apply(lq), gt))
    print(f"{args.set}, {args.k}-fold, mean PSNR over {len(data)} photos:")
    for name, values in scores.items():
        print(f"  {name:14s} {np.mean(values):6.2f} dB")


if __name__ == "__main__":
    main()
