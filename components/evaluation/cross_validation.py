"""The gate's scores for a cross-validated set: fold i's model, as served, on fold i's pairs.

Each fold model is scored by the same streaming pass as a val split (``scoring.score_split``),
against the preset fitted on its own training folds and against the champion where the champion
did not train on the pair. So every score the gate reads comes from a pair its model never saw,
and every pair is scored once. It estimates the recipe, not the shipped weights: those learn from
every pair (``train.ships: full``), or average these models (``ensemble``). On FiveK with 10
pairs the estimate came out below what the shipped model did on unseen photos (bench/README.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from components.config import InferenceSpec
from components.data.splits import FOLDS_DIR
from components.evaluation.scoring import PairObserver, Runner, score_split, val_pairs
from components.inference.tiling import BatchFn
from components.model.presets import PRESET_FILE, Preset, read_preset

if TYPE_CHECKING:
    from components.evaluation.perceptual import LpipsFn


@dataclass(frozen=True)
class Fold:
    lmdb: Path      # the fold's LMDB folder: its val holds the pairs its model did not train on
    onnx: Path      # the fold model's ONNX, as export wrote it
    preset: Preset  # fitted on the same training folds: the fold's baseline


def folds_of(lmdb_dir: Path, train_dir: Path, export_dir: Path, members: list[str]) -> list[Fold]:
    """Fold i's pairs, model and preset, for each ONNX member export wrote."""
    if not members:
        raise ValueError(f"{export_dir / 'export.json'} names no fold models, but {lmdb_dir} is cross-validated: "
                         "run train and export again (dvc repro)")
    return [Fold(lmdb_dir / FOLDS_DIR / str(i), export_dir / member,
                 read_preset(train_dir / FOLDS_DIR / str(i) / PRESET_FILE)) for i, member in enumerate(members)]


def score_folds(folds: list[Fold], spec: InferenceSpec, runner_for: Callable[[Path], BatchFn], champion: Runner | None,
                lpips_fn: LpipsFn | None = None,
                keep_worst: int = 0, on_pair: PairObserver | None = None) -> tuple[list[dict], list, list[dict]]:
    """(rows, worst previews, one summary per fold); ``runner_for(onnx path)`` gives a BatchFn."""
    rows: list[dict] = []
    worst: list = []
    per_fold: list[dict] = []
    for i, fold in enumerate(folds):
        served = Runner("served", runner_for(fold.onnx), spec)
        fold_rows, fold_worst = score_split(val_pairs(fold.lmdb), served, [champion] if champion else [],
                                            fold.preset, lpips_fn, keep_worst=keep_worst, on_pair=on_pair)
        rows += fold_rows
        worst = sorted(worst + fold_worst, key=lambda w: _psnr_of(w[0], rows))[:keep_worst]
        per_fold.append({"fold": i, "pairs": len(fold_rows), "baseline": fold.preset.kind,
                         **{k: float(np.mean([r[k] for r in fold_rows])) for k in ("psnr", "baseline_psnr")}})
    return rows, worst, per_fold


def _psnr_of(key: str, rows: list[dict]) -> float:
    return next(r["psnr"] for r in rows if r["image"] == key)
