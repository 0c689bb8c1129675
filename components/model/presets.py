"""The strongest cheap preset fitted to the train pairs: the baseline the gate makes a model beat.

A preset is a training-free global edit fitted to the pairs, what a retoucher's saved preset
does. Candidates (each has failure modes of its own, and which wins depends on the client):

- ``curves``: per-channel tone curves (``baseline.fit_tone_curves``), one mapping for every
  photo. Strong where the edit is the same whatever the capture (FiveK's experts).
- ``histogram``: each channel's quantiles moved to the train targets' mean quantiles, so a
  dark and a bright capture both end at the retoucher's usual look (listing edits normalise
  exposure).
- ``blend``: the mean of the two. Two weak estimators with different errors average to a
  better one (on real listing pairs: 19.99 dB against 19.23 and 18.81).
- ``grey_blend``: grey-world white balance on the input, then ``blend``.

The preset is chosen by leave-one-out PSNR on the train pairs (each pair scored by the preset
fitted to the others), so choosing it never looks at the val split. Every candidate's
leave-one-out score is kept, so the report says what was beaten.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from components.data.imageio import working_copy
from components.model.baseline import apply_tone_curves, curves_from_levels, photo_levels

Kind = Literal["curves", "histogram", "blend", "grey_blend"]
KINDS: tuple[Kind, ...] = ("curves", "histogram", "blend", "grey_blend")
QUANTILES = np.linspace(0.0, 1.0, 65)
STATS_SIDE = 512  # px: quantiles and grey-world gains from an area-averaged copy
PRESET_FILE = "preset.json"  # written by train beside the weights, read by evaluate


class Preset(BaseModel):
    """A fitted preset: its kind, per-channel curves (3x256) and target quantiles (3x65)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Kind
    curves: list[list[float]]
    target_quantiles: list[list[float]]
    loo_psnr: dict[str, float] = {}

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        return apply_preset(self.kind, rgb, np.asarray(self.curves), np.asarray(self.target_quantiles))


def read_preset(path: Path) -> Preset:
    """The preset train wrote; a missing or foreign file is named."""
    try:
        return Preset.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no fitted preset; run the train stage again (dvc repro train)") from None
    except ValidationError as exc:
        raise ValueError(f"{path} is not a brighthouse preset: {exc}") from None


def grey_world(rgb: np.ndarray) -> np.ndarray:
    means = working_copy(rgb, STATS_SIDE).reshape(-1, 3).mean(axis=0)
    gains = means.mean() / np.maximum(means, 1e-3)
    return np.clip(rgb * gains.astype(np.float32), 0.0, 1.0)


def quantiles(rgb: np.ndarray) -> np.ndarray:
    small = working_copy(rgb, STATS_SIDE)
    return np.stack([np.quantile(small[..., c], QUANTILES) for c in range(3)])


def match_histogram(rgb: np.ndarray, target_quantiles: np.ndarray) -> np.ndarray:
    """Each channel's quantiles mapped onto ``target_quantiles`` (piecewise linear, monotone)."""
    own = quantiles(rgb)
    out = np.empty_like(rgb)
    tie_break = np.arange(len(QUANTILES)) * 1e-6  # flat runs (clipped regions) map to their mean
    for c in range(3):
        out[..., c] = np.interp(rgb[..., c], own[c] + tie_break, np.maximum.accumulate(target_quantiles[c]))
    return out


def apply_preset(kind: Kind, rgb: np.ndarray, curves: np.ndarray, target_quantiles: np.ndarray) -> np.ndarray:
    if kind == "curves":
        return apply_tone_curves(rgb, curves)
    if kind == "histogram":
        return match_histogram(rgb, target_quantiles)
    source = grey_world(rgb) if kind == "grey_blend" else rgb
    return 0.5 * (apply_tone_curves(source, curves) + match_histogram(source, target_quantiles))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((np.clip(a, 0, 1) - b) ** 2)), 1e-12)))


def fit_preset(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> Preset:
    """The candidate with the best leave-one-out PSNR on (input, target) float RGB pairs."""
    small = [(working_copy(lq, STATS_SIDE), working_copy(gt, STATS_SIDE)) for lq, gt in pairs]
    if not small:
        raise ValueError("no training pairs to fit a preset on")
    levels = [photo_levels(lq, gt) for lq, gt in small]
    means, seen = np.stack([m for m, _ in levels]), np.stack([s for _, s in levels])
    own_quantiles = np.stack([quantiles(gt) for _, gt in small])
    n = len(small)
    scores: dict[str, float] = {}
    for kind in KINDS if n > 1 else ():  # one pair: nothing to leave out, the classic curves
        rest = [np.arange(n) != i for i in range(n)]
        scores[kind] = float(np.mean([_psnr(apply_preset(
            kind, lq, curves_from_levels(means[rest[i]], seen[rest[i]]), own_quantiles[rest[i]].mean(0)), gt)
            for i, (lq, gt) in enumerate(small)]))
    best = max(scores, key=scores.__getitem__) if scores else "curves"
    return Preset(kind=best, curves=curves_from_levels(means, seen).round(6).tolist(),
                  target_quantiles=own_quantiles.mean(0).round(6).tolist(), loo_psnr=scores)


def leave_one_out_priors(pairs: list[tuple[np.ndarray, np.ndarray]], kind: Kind) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per pair, the (curves, target quantiles) of ``kind`` fitted on the other pairs: the
    preset as an unseen photo meets it, not as its own pair's fit flatters it."""
    small = [(working_copy(lq, STATS_SIDE), working_copy(gt, STATS_SIDE)) for lq, gt in pairs]
    levels = [photo_levels(lq, gt) for lq, gt in small]
    means, seen = np.stack([m for m, _ in levels]), np.stack([s for _, s in levels])
    own_quantiles = np.stack([quantiles(gt) for _, gt in small])
    rest = [np.arange(len(small)) != i for i in range(len(small))]
    return [(curves_from_levels(means[r], seen[r]), own_quantiles[r].mean(0)) for r in rest]
