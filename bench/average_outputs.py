"""Score the average of several k-fold runs' outputs: a seed ensemble, measured before building it.

Each run is ``bench/kfold.py ... -S seed=N --save-outputs DIR`` on the same folds; this averages
the runs' full-resolution outputs photo by photo and scores the average against the targets with
the gate's own scoring (PSNR, SSIM, CIEDE2000 and the retoucher's checks), beside each run alone.

    .venv/bin/python bench/average_outputs.py --set fivek_expertC /tmp/s0 /tmp/s1 /tmp/s2 --sheet /tmp/ens.png

Averaging after the transfer to full resolution is what an ``Ensemble`` checkpoint does before
it (the networks' working-size edits averaged, then one transfer): the transfer's per-window
colour fit is a ridge least-squares fit, affine in the edit, so the two agree except where an
edit clips. ``--sheet`` writes input | first run | average | target for the worst and median photo.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO.parent / "shared" / "real-pairs"
sys.path.insert(0, str(REPO))
METRICS = ("psnr", "ssim", "ciede2000_mean", "contrast_error", "cast")


def as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)


def pair(root: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) of ``key`` in a pair folder of our layout, as floats in [0, 1]."""
    from components.data.imageio import load_rgb

    return tuple(as_float(load_rgb(next((root / side).glob(f"{key}.*")))) for side in ("input", "target"))


def averaged(runs: list[Path], key: str) -> np.ndarray:
    return np.clip(np.mean([np.load(run / f"{key}.npy").astype(np.float32) for run in runs], axis=0), 0, 1)


def scores(root: Path, runs: list[Path], keys: list[str]) -> list[dict]:
    from components.evaluation.scoring import score_image

    rows = []
    for key in keys:
        lq, gt = pair(root, key)
        rows.append({"image": key, **score_image(averaged(runs, key), gt, lq)})
    return rows


def write_sheet(root: Path, runs: list[Path], rows: list[dict], path: Path) -> None:
    from PIL import Image

    from components.data.imageio import working_copy

    ranked = sorted(rows, key=lambda r: r["psnr"])
    strips = []
    for row in (ranked[0], ranked[len(ranked) // 2]):
        lq, gt = pair(root, row["image"])
        cells = [working_copy(np.clip(img, 0, 1), 300) for img in (lq, averaged(runs[:1], row["image"]),
                                                                   averaged(runs, row["image"]), gt)]
        strips.append(np.concatenate(cells, axis=1))
        print(f"sheet: {row['image']} {row['psnr']:.2f} dB")
    width = max(s.shape[1] for s in strips)
    strips = [np.pad(s, ((0, 4), (0, width - s.shape[1]), (0, 0)), constant_values=1) for s in strips]
    Image.fromarray((np.concatenate(strips) * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="fivek_expertC", help="a set in ../shared/real-pairs, or a pair folder")
    ap.add_argument("runs", type=Path, nargs="+", help="--save-outputs folders of kfold.py runs on the same folds")
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    root = Path(args.set) if Path(args.set).is_dir() else PAIRS / args.set
    keys = sorted(p.stem for p in args.runs[0].glob("*.npy"))
    missing = {str(r): len(keys) - len(list(r.glob("*.npy"))) for r in args.runs}
    if not keys or any(missing.values()):
        raise SystemExit(f"runs differ in their photos (missing per run: {missing}); run every fold of each")
    for label, runs in [(str(r), [r]) for r in args.runs] + [("average of all", args.runs)]:
        rows = scores(root, runs, keys)
        print(label + ": " + ", ".join(f"{m} {np.mean([r[m] for r in rows]):.3f}" for m in METRICS)
              + f", blown {100 * np.mean([r['blown_highlights'] for r in rows]):.3f}%")
    if args.sheet:
        write_sheet(root, args.runs, rows, args.sheet)


if __name__ == "__main__":
    main()
