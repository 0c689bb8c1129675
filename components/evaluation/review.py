"""What a person needs to decide a promotion: the challenger's edit beside the champion's.

``ReviewCollector`` watches the scoring pass (``scoring.score_split``'s ``on_pair``): for
every val pair it records both versions' PSNR, CIEDE2000 and retoucher checks (contrast,
cast, blown highlights) against the target and how much
their edits differ (mean CIEDE2000 between the two outputs); for the ``photos`` pairs that
differ most it keeps small JPEG previews (input, champion, challenger, target), a heatmap of
that difference, and full-resolution crops where it is largest. Memory is bounded by
``photos``, not by the split. ``components/evaluation/review_page.py`` turns the result into the page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.config import ReviewConfig
from components.data.imageio import jpeg_data_uri, working_copy
from components.evaluation.metrics import ciede2000, ciede2000_map, psnr
from components.evaluation.retoucher import TargetLook
from components.inference.tiling import to_uint8

CHALLENGER, CHAMPION = "served", "champion"  # the scoring runners' names
REVIEW_DATA = "review.json"  # evaluate writes it beside metrics.json; register renders it
HEAT_MAX_DE = 10.0  # CIEDE2000 at which the heatmap saturates (white); 1 is just noticeable


def heat_colours(de: np.ndarray) -> np.ndarray:
    """CIEDE2000 as black -> red -> yellow -> white (saturating at ``HEAT_MAX_DE``), uint8 RGB."""
    t = np.clip(de / HEAT_MAX_DE, 0, 1)[..., None]
    ramp = np.clip(np.concatenate([3 * t, 3 * t - 1, 3 * t - 2], axis=-1), 0, 1)
    return (ramp * 255 + 0.5).astype(np.uint8)


def largest_difference_box(de: np.ndarray, scale: float, full_shape: tuple[int, int],
                           side: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) at full resolution of a ``side`` crop centred where the
    preview-resolution difference map ``de`` (smoothed over a few px) peaks."""
    import cv2

    smooth = cv2.blur(de, (9, 9))
    y, x = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    h, w = full_shape
    ch, cw = min(side, h), min(side, w)
    top = int(np.clip(round(y / scale) - ch // 2, 0, h - ch))
    left = int(np.clip(round(x / scale) - cw // 2, 0, w - cw))
    return top, left, ch, cw


def retoucher_columns(row: dict, champion: np.ndarray, gt: np.ndarray) -> dict:
    """Both versions' retoucher checks (``retoucher.py``): the challenger's from its scored row."""
    theirs = TargetLook(gt).checks(champion)
    return {f"{who}_{k}": value[k] for k in ("contrast_error", "cast", "blown_highlights")
            for who, value in (("challenger", row), ("champion", theirs))}


@dataclass
class ReviewCollector:
    cfg: ReviewConfig
    rows: list[dict] = field(default_factory=list)
    photos: list[dict] = field(default_factory=list)  # the most-changed, largest difference first

    def __call__(self, key: str, lq: np.ndarray, gt: np.ndarray, row: dict,
                 outputs: dict[str, tuple[np.ndarray, float]]) -> None:
        (challenger, t_challenger), (champion, t_champion) = outputs[CHALLENGER], outputs[CHAMPION]
        side = self.cfg.preview_side
        small = {name: working_copy(img, side) for name, img in
                 (("input", lq), ("champion", champion), ("challenger", challenger), ("target", gt))}
        diff = ciede2000_map(small["challenger"], small["champion"])
        entry = {"image": key, "difference": float(diff.mean(dtype=np.float64)),
                 "challenger_psnr": row["psnr"], "champion_psnr": row.get(f"{CHAMPION}_psnr", psnr(champion, gt)),
                 # the champion trained on this pair: its scores here flatter it, and the gate leaves them out
                 "champion_trained_on": f"{CHAMPION}_psnr" not in row,
                 "challenger_ciede2000": row["ciede2000_mean"], "champion_ciede2000": ciede2000(champion, gt)[0],
                 "challenger_seconds": t_challenger, "champion_seconds": t_champion,
                 "width": int(lq.shape[1]), "height": int(lq.shape[0]), **retoucher_columns(row, champion, gt)}
        self.rows.append(entry)
        room = len(self.photos) < self.cfg.photos
        if self.cfg.photos and (room or entry["difference"] > self.photos[-1]["difference"]):
            scale = small["input"].shape[0] / lq.shape[0]
            photo = {**entry, **self._images(small, diff, (lq, champion, challenger, gt), scale)}
            self.photos = sorted([*self.photos, photo], key=lambda p: -p["difference"])[: self.cfg.photos]

    def _images(self, small: dict, diff: np.ndarray, full: tuple, scale: float) -> dict:
        top, left, h, w = largest_difference_box(diff, scale, full[0].shape[:2], self.cfg.crop_side)
        crops = {name: jpeg_data_uri(to_uint8(img[top:top + h, left:left + w]), 90)
                 for name, img in zip(("input", "champion", "challenger", "target"), full, strict=True)}
        return {"previews": {name: jpeg_data_uri(to_uint8(img)) for name, img in small.items()},
                "heatmap": jpeg_data_uri(heat_colours(diff), 90), "crops": crops, "crop_box": [top, left, h, w]}

    def result(self) -> dict:
        """Every pair's row (most changed first) and the kept photos: JSON-ready."""
        return {"rows": sorted(self.rows, key=lambda r: -r["difference"]), "photos": self.photos,
                "heat_max_de": HEAT_MAX_DE}


def compare_versions(model_name: str, version: str, against: str, lmdb_dir: Path, cfg: ReviewConfig) -> dict:
    """Review data for any two registered versions, each run as served (its own ONNX, mode and
    tiling) on the val split in ``lmdb_dir``: the same pass and page as ``register``'s."""
    from components.evaluation.scoring import Runner, score_split, val_pairs
    from components.inference.onnx_session import ort_runner
    from components.registry.model_store import fetch

    runners = []
    for name, ver in ((CHALLENGER, version), (CHAMPION, against)):
        ref = fetch(model_name, "", ver)
        runners.append(Runner(name, ort_runner(ref.onnx_path), ref.metadata.inference, keep_output=True))
    collector = ReviewCollector(cfg)
    score_split(val_pairs(lmdb_dir), runners[0], runners[1:], on_pair=collector)
    return {"champion_version": str(against), **collector.result()}
