"""One row of measured properties per pair: what the great-expectations suite judges.

A property that cannot be measured (no file, no pixels) is None, which the suite skips,
so each pair fails only on its root cause.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.data.imageio import Decoded, ImageError, read_image
from components.data.pair_checks import alignment_score, dhash, near_duplicates
from components.data.pairs import Pair

log = logging.getLogger(__name__)

COLUMNS = ("safe", "partner_present", "input_decodes", "target_decodes", "modes_ok", "orientation_ok",
           "same_size", "min_side", "aspect_ok", "aligned", "unique")


def _decode(pair: Pair, row: dict, cfg: ValidateConfig, upright: bool = True) -> dict[str, Decoded]:
    images = {}
    for role, path in zip(("input", "target"), pair.files(), strict=True):
        try:
            images[role] = read_image(path, int(cfg.max_megapixels * 1_000_000), flatten_alpha=True, upright=upright)
            row[f"{role}_decodes"] = True
        except ImageError as exc:
            row[f"{role}_decodes"] = False
            row["detail"].append(str(exc))
    return images


def _lines_up(a: np.ndarray, b: np.ndarray, cfg: ValidateConfig) -> bool:
    if a.shape != b.shape:
        return False
    score = alignment_score(a, b)
    return score is None or score >= cfg.min_alignment


def _check_orientation(pair: Pair, images: dict[str, Decoded], row: dict, cfg: ValidateConfig) -> None:
    """Phone photos store pixels sideways plus an EXIF tag. Pairs are compared upright; when
    the tags differ and only the raw, un-rotated pixels line up, the editor's tool ignored
    the tag, and the pair is refused rather than learned rotated."""
    o_in, o_tar = images["input"].orientation, images["target"].orientation
    row["orientation_ok"] = True
    if o_in == o_tar:
        return
    row["notes"].append(f"EXIF orientation differs (input {o_in}, target {o_tar}); compared upright")
    if _lines_up(images["input"].rgb, images["target"].rgb, cfg):
        return
    raw = _decode(pair, {"detail": []}, cfg, upright=False)
    if len(raw) == 2 and _lines_up(raw["input"].rgb, raw["target"].rgb, cfg):
        row["orientation_ok"] = False
        row["detail"].append(f"EXIF orientation input {o_in} vs target {o_tar}: the pair only matches "
                             "with the orientation ignored")


def _check_geometry(images: dict[str, Decoded], row: dict, cfg: ValidateConfig) -> bool:
    (ih, iw), (th, tw) = images["input"].rgb.shape[:2], images["target"].rgb.shape[:2]
    row["same_size"] = (ih, iw) == (th, tw)
    row["min_side"] = int(min(ih, iw, th, tw))
    row["aspect_ok"] = max(ih, iw) / min(ih, iw) <= cfg.max_aspect_ratio
    if not row["same_size"]:
        row["detail"].append(f"input {iw}x{ih} vs target {tw}x{th}")
        return False
    score = alignment_score(images["input"].rgb, images["target"].rgb)
    row["aligned"] = None if score is None else score >= cfg.min_alignment
    if row["aligned"] is False:
        row["detail"].append(f"alignment {score:.2f} < {cfg.min_alignment}")
    return True


def measure_pair(pair: Pair, cfg: ValidateConfig) -> tuple[dict, int | None]:
    """The pair's row, and its target's perceptual hash (None when it has no usable pixels)."""
    row: dict = {c: None for c in COLUMNS}
    row.update(pair_id=pair.pair_id, input=None if pair.input is None else str(pair.input),
               target=None if pair.target is None else str(pair.target), detail=[], notes=[])
    row["safe"] = not pair.refused
    if pair.refused:  # nothing is read: not even whether the partner exists
        row["detail"].append(pair.refused)
        return row, None
    row["partner_present"] = pair.complete
    if not pair.complete:
        row["detail"] += [f"missing: {p}" for p in (pair.input, pair.target) if p is not None and not p.is_file()]
        return row, None
    images = _decode(pair, row, cfg)
    if len(images) < 2:
        return row, None
    for role, img in images.items():
        row["notes"] += [f"{role}: {note}" for note in img.notes]
    row["modes_ok"] = cfg.modes == "convert" or not row["notes"]
    if not row["modes_ok"]:
        row["detail"] += row["notes"]
    row["notes"] += [f"{role}: {img.colour}" for role, img in images.items() if img.colour]  # not a format issue
    _check_orientation(pair, images, row, cfg)
    if row["orientation_ok"] is False or not _check_geometry(images, row, cfg):
        return row, None
    return row, dhash(images["target"].rgb)


def _measure_all(pairs: list[Pair], cfg: ValidateConfig) -> list[tuple[dict, int | None]]:
    """``measure_pair`` over all pairs, in ``cfg.workers`` processes (decoding dominates:
    two full-resolution photos per pair), in the pairs' order."""
    workers = min(cfg.workers or os.cpu_count() or 1, len(pairs))
    if workers > 1 and multiprocessing.current_process().daemon:
        # A task of a Celery prefork worker runs in a daemonic process, which may not start
        # children: measure here, one pair after another, rather than fail the delivery.
        log.warning("validating %d pairs in one process: this is a daemonic process (a Celery prefork "
                    "worker's task), which may not start a process pool", len(pairs))
        workers = 1
    if workers <= 1:
        return [measure_pair(p, cfg) for p in pairs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(measure_pair, pairs, [cfg] * len(pairs)))


def measure_pairs(pairs: list[Pair], cfg: ValidateConfig, known: dict[str, int] | None = None
                  ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The table for ``pairs`` and their target hashes; a pair that looks like a ``known``
    one (already in the dataset) or an earlier one of this batch is not unique."""
    measured = dict(zip((p.pair_id for p in pairs), _measure_all(pairs, cfg), strict=True))
    hashes = {k: h for k, (_, h) in measured.items() if h is not None}
    dupes = near_duplicates(hashes, cfg.max_hash_distance, known or {})
    rows = []
    for pair_id, (row, h) in measured.items():
        if h is not None:
            row["unique"] = pair_id not in dupes
            if pair_id in dupes:
                row["detail"].append(f"looks like {dupes[pair_id]}")
        rows.append(row)
    return pd.DataFrame(rows), hashes
