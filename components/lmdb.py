"""Stage ``lmdb``: write train/val pairs into LMDBs in the layout BasicSR reads.

Each LMDB folder holds ``data.mdb`` and ``meta_info.txt`` with lines ``<key>.png (h,w,c) <level>``
(what ``basicsr.utils.lmdb_util`` writes), values are encoded images that ``cv2.imdecode`` reads
(PNG, or a photo's own JPEG: see below), and the input (``lq``) and target (``gt``) databases
share their keys, so BasicSR's ``PairedImageDataset`` with ``io_backend: lmdb`` reads them
unchanged.

Training pairs are stored twice, once per inference mode (components/inference/modes.py):
- ``train/``: each whole photo at full resolution, for ``tiled`` models, whose patches are cut
  when training draws them (components/data/photo_crops.py);
- ``train_whole/``: each whole photo shrunk to ``lmdb.whole_photo_side`` (long side), as PNG,
  for ``global_view`` models, which see whole photos; small (about a fifth of the JPEGs).
Validation pairs stay whole at full size, since evaluation is at full size. A full-size photo is
stored as its file's own bytes (a JPEG stays the JPEG) when OpenCV, which every reader decodes
with, gives exactly the pixels validation accepted; otherwise (EXIF turns, colour modes, alpha)
as PNG. So ``train/`` and ``val/`` together cost what the accepted photos cost, and nothing is
re-encoded: sub-images of 480 px as PNG, as BasicSR's recipe writes them, took six times that
(bench/README.md, the scale table).
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from components.config import LmdbConfig
from components.data.imageio import decode_image, working_copy
from components.data.pairs import Pair, find_pairs
from components.data.splits import FOLDS_DIR, SPLITS_FILE, SplitRecord, lmdb_key, make_split
from components.errors import StageFailed
from components.records import ValidationReport, read_record, write_json
from components.stage import run_stage

log = logging.getLogger(__name__)
MAP_SIZE = 1 << 40  # virtual reservation only; LMDB files grow to what is written
Record = tuple[str, bytes, bytes, tuple[int, int, int]]  # key, lq bytes, gt bytes, shape


@dataclass(frozen=True)
class LmdbPaths:
    data: Path
    report: Path  # the validate stage's report: only its ``accepted`` pairs are written
    out: Path


def encode_png(rgb: np.ndarray, level: int) -> bytes:
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def stored_bytes(source: bytes, rgb: np.ndarray, level: int) -> bytes:
    """``source`` itself when OpenCV decodes it to exactly ``rgb``, else ``rgb`` as PNG."""
    decoded = cv2.imdecode(np.frombuffer(source, np.uint8), cv2.IMREAD_COLOR)
    if decoded is not None and decoded.shape == rgb.shape and np.array_equal(decoded[..., ::-1], rgb):
        return source
    return encode_png(rgb, level)


def pair_records(pair: Pair, cfg: LmdbConfig, layouts: tuple[str, ...], max_pixels: int) -> dict[str, Record]:
    """One pair, decoded once, as a record per layout: ``whole`` (full size, its own bytes where
    they decode exactly) and ``whole_small`` (``lmdb.whole_photo_side``, PNG); runs in a worker."""
    files = pair.files()
    sources = files[0].read_bytes(), files[1].read_bytes()
    # flatten_alpha: a pair with alpha only gets here when validation's mode policy allowed it
    lq, gt = (decode_image(data, str(path), max_pixels, flatten_alpha=True).rgb
              for data, path in zip(sources, files, strict=True))
    if lq.shape != gt.shape:
        raise StageFailed(f"{files[0]} and {files[1]} differ in size: {lq.shape} vs {gt.shape}")
    key, records = lmdb_key(pair.pair_id), {}
    if "whole" in layouts:
        lq_bytes, gt_bytes = (stored_bytes(data, rgb, cfg.png_compression)
                              for data, rgb in zip(sources, (lq, gt), strict=True))
        records["whole"] = (key, lq_bytes, gt_bytes, lq.shape)
    if "whole_small" in layouts:
        small = working_copy(lq, cfg.whole_photo_side), working_copy(gt, cfg.whole_photo_side)
        lq_png, gt_png = (encode_png(img, cfg.png_compression) for img in small)
        records["whole_small"] = (key, lq_png, gt_png, small[0].shape)
    return records


class PairedLmdbWriter:
    """Writes ``lq.lmdb`` and ``gt.lmdb`` beside their final place, then moves them in whole,
    so an interrupted run never leaves a half-written database where training looks."""

    def __init__(self, out: Path, level: int) -> None:
        self.out, self.level = out, level
        self.meta: list[str] = []
        self.tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.envs = {}
        for role in ("lq", "gt"):
            (self.tmp / f"{role}.lmdb").mkdir(parents=True)
            self.envs[role] = lmdb.open(str(self.tmp / f"{role}.lmdb"), map_size=MAP_SIZE)

    def write(self, records: Iterable[Record]) -> None:
        txns = {role: env.begin(write=True) for role, env in self.envs.items()}
        for key, lq_png, gt_png, (h, w, c) in records:
            txns["lq"].put(key.encode("ascii"), lq_png)
            txns["gt"].put(key.encode("ascii"), gt_png)
            self.meta.append(f"{key}.png ({h},{w},{c}) {self.level}\n")
        for txn in txns.values():
            txn.commit()

    def close(self) -> None:
        for role, env in self.envs.items():
            env.close()
            # lock.mdb is the writer's reader table (pids, txn ids): different bytes on every run,
            # so the stage's output never reproduced. Readers open with lock=False (BasicSR's
            # default, iter_lmdb, WholePhotoDataset) and never need it.
            (self.tmp / f"{role}.lmdb" / "lock.mdb").unlink(missing_ok=True)
            (self.tmp / f"{role}.lmdb" / "meta_info.txt").write_text("".join(self.meta), encoding="ascii")
        shutil.rmtree(self.out, ignore_errors=True)
        self.tmp.rename(self.out)


def write_layout(pairs: list[Pair], dests: dict[Path, tuple[str, set[str]]], cfg: LmdbConfig,
                 max_pixels: int) -> dict[Path, int]:
    """Decode each pair once (refusing more than ``max_pixels``, validation's limit) and write its
    ``layout`` record (``pair_records``) into every folder of ``dests`` (folder -> (layout, pair
    ids)) whose ids hold it; images per folder."""
    workers, layouts = cfg.workers or os.cpu_count() or 1, tuple(sorted({layout for layout, _ in dests.values()}))
    writers = {out: PairedLmdbWriter(out, cfg.png_compression) for out in dests}
    with ProcessPoolExecutor(workers) as pool:
        n = len(pairs)
        jobs = pool.map(pair_records, pairs, [cfg] * n, [layouts] * n, [max_pixels] * n)
        for pair, records in zip(pairs, tqdm(jobs, total=len(pairs), desc="lmdb", unit="pair"), strict=True):
            for out, (layout, ids) in dests.items():
                if pair.pair_id in ids:
                    writers[out].write([records[layout]])
    for writer in writers.values():
        writer.close()
    return {out: len(writer.meta) for out, writer in writers.items()}


def write_split(pairs: list[Pair], outs: dict[str, Path], cfg: LmdbConfig, max_pixels: int) -> dict[str, int]:
    """Write ``pairs`` into one LMDB pair per layout (``outs``: layout -> folder), decoding
    each pair once; returns the images written per layout."""
    ids = {p.pair_id for p in pairs}
    counts = write_layout(pairs, {out: (layout, ids) for layout, out in outs.items()}, cfg, max_pixels)
    return {layout: counts[out] for layout, out in outs.items()}


def layout_destinations(split: SplitRecord, out: Path) -> dict[Path, tuple[str, set[str]]]:
    """Where each pair goes: ``train`` (full size) and ``train_whole`` (small) with the pairs the
    shipped model learns from, ``val`` (full size) with the held-out ones; with cross-validation
    also ``folds/<i>/`` in the same layout, its val being fold i and its train the other folds.
    (The top-level val then holds every pair: export's checks and the shipped model's runtime
    checks read it; no gate score comes from it.)"""
    train, val = set(split.train), set(split.val)
    dests = {out / "train": ("whole", train), out / "train_whole": ("whole_small", train), out / "val": ("whole", val)}
    for i, held in enumerate(split.folds):
        fold, rest = out / FOLDS_DIR / str(i), train - set(held)
        dests.update({fold / "train": ("whole", rest), fold / "train_whole": ("whole_small", rest),
                      fold / "val": ("whole", set(held))})
    return dests


def accepted_pairs(data: Path, report: Path) -> tuple[list[Pair], int]:
    """The pairs validation accepted (quarantined ones stay in ``data`` but are not used), and
    the pixel limit it accepted them under (``validate.max_megapixels``, its one home)."""
    record = read_record(ValidationReport, report)
    accepted = set(record.accepted)
    pairs = [p for p in find_pairs(data) if p.pair_id in accepted]
    missing = accepted - {p.pair_id for p in pairs}
    if missing:
        raise StageFailed(f"{report} accepts pairs that are not in {data}: {sorted(missing)[:5]}; "
                          "run the validate stage again")
    return pairs, int(record.policy.max_megapixels * 1_000_000)


def run_lmdb(cfg: LmdbConfig, paths: LmdbPaths) -> dict:
    pairs, max_pixels = accepted_pairs(paths.data, paths.report)
    try:
        split = make_split([p.pair_id for p in pairs], cfg.val_fraction, cfg.min_train_share,
                           cfg.cross_validate_below, cfg.folds)
    except ValueError as exc:
        raise StageFailed(str(exc)) from exc
    shutil.rmtree(paths.out / FOLDS_DIR, ignore_errors=True)  # a hash split has none; CV rewrites them
    counts = write_layout(pairs, layout_destinations(split, paths.out), cfg, max_pixels)
    write_json(paths.out / SPLITS_FILE, split.model_dump())
    log.info("%s split: %d pairs train, %d scored%s", split.scheme, len(split.train), len(split.val),
             f" out of fold ({len(split.folds)} folds)" if split.folds else "")
    return {"scheme": split.scheme, "pairs": {"train": len(split.train), "val": len(split.val)},
            "folds": [len(f) for f in split.folds],
            "images": {str(out.relative_to(paths.out)): n for out, n in counts.items()}}


def main(argv: list[str] | None = None) -> int:
    return run_stage("lmdb", LmdbPaths, run_lmdb, argv)


if __name__ == "__main__":
    raise SystemExit(main())
