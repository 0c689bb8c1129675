"""Scoring models on a val split at full resolution, one decoded pair at a time.

Memory does not grow with the split: each pair is decoded once, every runner that needs it
(the served model, the champion, the other pooling, FP16) enhances it in turn, its row is
kept, and only small previews of the worst images stay for the report. At 7 MP a pair
(input, target, one output, float32) is about 260 MB, whatever the number of val pairs.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from components.config import InferenceSpec
from components.data.imageio import working_copy
from components.data.lmdb_read import iter_pairs
from components.evaluation.metrics import ciede2000, psnr, ssim
from components.evaluation.retoucher import TargetLook
from components.inference.modes import enhance
from components.inference.tiling import BatchFn
from components.model.presets import Preset

if TYPE_CHECKING:
    from components.evaluation.perceptual import LpipsFn

log = logging.getLogger(__name__)
PREVIEW_SIDE = 960  # px, long side of the worst-image previews kept for the report


@dataclass(frozen=True)
class Runner:
    """A model as scored: ``name`` prefixes its columns (``champion_psnr``); the served one
    gets the full row."""

    name: str
    run_batch: BatchFn
    spec: InferenceSpec
    keep_output: bool = False  # hand its output to ``on_pair`` (the review compares it with the served one)
    # its PSNR counts on these pair keys alone (a champion: those it did not train on); elsewhere it
    # runs only to hand its output to ``on_pair`` (the review shows it, marked), if it keeps output
    only: frozenset[str] | None = None


# (key, input, target, the served row, {runner name: (output, seconds)}) for each pair, as scored
PairObserver = Callable[[str, np.ndarray, np.ndarray, dict, dict[str, tuple[np.ndarray, float]]], None]


def val_pairs(lmdb_dir: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(key, input, target) of the val split, decoded one pair at a time."""
    return iter_pairs(lmdb_dir / "val")


def score_image(out: np.ndarray, gt: np.ndarray, lq: np.ndarray, preset: Preset | None = None,
                lpips_fn: LpipsFn | None = None) -> dict:
    """The output's scores against the target, with the identity's (input as output) and the
    baseline preset's beside them; each also gets the retoucher's checks (``retoucher.py``)."""
    de_mean, de_p95 = ciede2000(out, gt)
    look = TargetLook(gt)
    row = {"psnr": psnr(out, gt), "ssim": ssim(out, gt), "ciede2000_mean": de_mean, "ciede2000_p95": de_p95,
           **look.checks(out), "identity_psnr": psnr(lq, gt), "identity_ssim": ssim(lq, gt),
           **look.checks(lq, "identity_")}
    if preset is not None:
        baseline = preset.apply(lq)
        row["baseline_psnr"] = psnr(baseline, gt)
        row["baseline_ciede2000_mean"] = ciede2000(baseline, gt)[0]
        row.update(look.checks(baseline, "baseline_"))
    if lpips_fn is not None:
        row["lpips"] = lpips_fn(out, gt)
    return row


def _preview(image: np.ndarray) -> np.ndarray:
    return working_copy(image, PREVIEW_SIDE)  # area-averaged, still float in [0, 1]


def _timed(runner: Runner, lq: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = enhance(lq, runner.run_batch, runner.spec)
    return out, time.perf_counter() - start


def score_split(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], served: Runner, others: Iterable[Runner] = (),
                preset: Preset | None = None, lpips_fn: LpipsFn | None = None, keep_worst: int = 0,
                on_pair: PairObserver | None = None) -> tuple[list[dict], list]:
    """One row per pair: the served runner's full scores and seconds per megapixel, plus
    ``<name>_psnr`` for each other runner; and previews (key, input, output, target) of the
    ``keep_worst`` lowest-PSNR pairs. ``on_pair`` sees each pair with the served output and
    those of runners that ``keep_output``."""
    others = list(others)
    rows: list[dict] = []
    worst: list = []
    for key, lq, gt in pairs:
        out, seconds = _timed(served, lq)
        outputs = {served.name: (out, seconds)}
        row = {"image": key, **score_image(out, gt, lq, preset, lpips_fn),
               "seconds_per_mp": seconds / (out.shape[0] * out.shape[1] / 1e6)}
        for runner in others:
            counted = runner.only is None or key in runner.only
            if not (counted or runner.keep_output):
                continue
            other, other_seconds = _timed(runner, lq)
            if counted:
                row[f"{runner.name}_psnr"] = psnr(other, gt)
            if runner.keep_output:
                outputs[runner.name] = (other, other_seconds)
            del other
        if on_pair is not None:
            on_pair(key, lq, gt, row, outputs)
        del outputs
        rows.append(row)
        log.info("%s: %.2f dB (identity %.2f dB)", key, row["psnr"], row["identity_psnr"])
        if keep_worst and (len(worst) < keep_worst or row["psnr"] < worst[-1][0]):
            previews = (_preview(lq), _preview(out), _preview(gt))
            worst = sorted([*worst, (row["psnr"], key, *previews)], key=lambda w: w[0])[:keep_worst]
    return rows, [w[1:] for w in worst]


def mean_psnr(run_batch: BatchFn, spec: InferenceSpec, pairs: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> float:
    """The mean per-pair PSNR of ``run_batch`` in ``spec``'s mode: the gate's PSNR, for a
    runtime that is checked against it (a TensorRT engine)."""
    return float(np.mean([psnr(enhance(lq, run_batch, spec), gt) for _, lq, gt in pairs]))


def summarize(rows: list[dict]) -> dict:
    """The mean of every numeric column over the rows that have it. A champion is scored only on
    pairs it did not train on: ``champion_pairs`` says how many, and ``psnr_on_champion_pairs``
    is the scored model's PSNR on those same pairs, the comparison the gate makes."""
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "image"))
    summary = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    shared = [r for r in rows if "champion_psnr" in r]
    if shared:
        summary.update(champion_pairs=len(shared), psnr_on_champion_pairs=float(np.mean([r["psnr"] for r in shared])))
    return summary
