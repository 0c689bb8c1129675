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

import hashlib
import json
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
from components.stage import StageFailed, run_stage, write_json

MAP_SIZE = 1 << 40  # virtual reservation only; LMDB files grow to what is written
Record = tuple[str, bytes, bytes, tuple[int, int, int]]  # key, lq bytes, gt bytes, shape


@dataclass(frozen=True)
class LmdbPaths:
    data: Path
    report: Path  # the validate stage's report: only its ``accepted`` pairs are written
    out: Path


def split_bucket(pair_id: str) -> float:
    """A pure function of the id, uniform in [0, 1]."""
    return int(hashlib.sha256(pair_id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(pair_id: str, val_fraction: float) -> str:
    """'train' or 'val' as a pure function of the id: new data never moves old pairs."""
    return "val" if split_bucket(pair_id) < val_fraction else "train"


def lmdb_key(pair_id: str) -> str:
    # BasicSR derives keys with line.split(".")[0], so keys must be ASCII without dots.
    key = "".join(c if c.isalnum() or c in "-_" else "_" for c in pair_id)
    return key.encode("ascii", "replace").decode("ascii")


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


def pair_records(pair: Pair, cfg: LmdbConfig, layouts: tuple[str, ...]) -> dict[str, Record]:
    """One pair, decoded once, as a record per layout: ``whole`` (full size, its own bytes where
    they decode exactly) and ``whole_small`` (``lmdb.whole_photo_side``, PNG); runs in a worker."""
    sources = pair.input.read_bytes(), pair.target.read_bytes()
    # flatten_alpha: a pair with alpha only gets here when validation's mode policy allowed it
    lq, gt = (decode_image(data, str(path), flatten_alpha=True).rgb
              for data, path in zip(sources, (pair.input, pair.target)))
    if lq.shape != gt.shape:
        raise StageFailed(f"{pair.input} and {pair.target} differ in size: {lq.shape} vs {gt.shape}")
    key, records = lmdb_key(pair.pair_id), {}
    if "whole" in layouts:
        lq_bytes, gt_bytes = (stored_bytes(data, rgb, cfg.png_compression) for data, rgb in zip(sources, (lq, gt)))
        records["whole"] = (key, lq_bytes, gt_bytes, lq.shape)
    if "whole_small" in layouts:
        small = working_copy(lq, cfg.whole_photo_side), working_copy(gt, cfg.whole_photo_side)
        records["whole_small"] = (key, *(encode_png(img, cfg.png_compression) for img in small), small[0].shape)
    return records


class PairedLmdbWriter:
    """Writes ``lq.lmdb`` and ``gt.lmdb`` beside their final place, then moves them in whole,
    so an interrupted run never leaves a half-written database where training looks."""

    def __init__(self, out: Path, level: int) -> None:
        self.out, self.level, self.meta = out, level, []
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


def write_split(pairs: list[Pair], outs: dict[str, Path], cfg: LmdbConfig) -> dict[str, int]:
    """Write ``pairs`` into one LMDB pair per layout (``outs``: layout -> folder), decoding
    each pair once; returns the images written per layout."""
    workers, layouts = cfg.workers or os.cpu_count() or 1, tuple(outs)
    writers = {layout: PairedLmdbWriter(out, cfg.png_compression) for layout, out in outs.items()}
    with ProcessPoolExecutor(workers) as pool:
        jobs = pool.map(pair_records, pairs, [cfg] * len(pairs), [layouts] * len(pairs))
        names = "+".join(out.name for out in outs.values())
        for records in tqdm(jobs, total=len(pairs), desc=f"lmdb {names}", unit="pair"):
            for layout, record in records.items():
                writers[layout].write([record])
    for writer in writers.values():
        writer.close()
    return {layout: len(writer.meta) for layout, writer in writers.items()}


def split_pairs(pairs: list[Pair], val_fraction: float, min_train_share: float = 0.7) -> dict[str, list[Pair]]:
    """Val: the pairs whose id hashes under ``val_fraction`` (so a pair's split does not change as
    data grows), with two bounds that only bind on small sets, where the hash alone is lumpy
    (it once gave 6 of 10 pairs to val): train keeps at least ``min_train_share`` of the pairs
    (the highest-hash candidates train instead), and val gets at least one pair (the lowest hash)."""
    if len(pairs) < 2:
        raise StageFailed(f"{len(pairs)} accepted pair(s): at least 2 are needed (one to train, one to validate)")
    ranked = sorted(pairs, key=lambda p: (split_bucket(p.pair_id), p.pair_id))
    most_val = max(1, int(len(pairs) * (1 - min_train_share) + 1e-9))
    val = [p for p in ranked if split_bucket(p.pair_id) < val_fraction][:most_val] or ranked[:1]
    chosen = {p.pair_id for p in val}
    return {"train": [p for p in pairs if p.pair_id not in chosen], "val": [p for p in pairs if p.pair_id in chosen]}


def accepted_pairs(data: Path, report: Path) -> list[Pair]:
    """The pairs validation accepted; quarantined ones stay in ``data`` but are not used."""
    accepted = set(json.loads(report.read_text(encoding="utf-8"))["accepted"])
    pairs = [p for p in find_pairs(data) if p.pair_id in accepted]
    missing = accepted - {p.pair_id for p in pairs}
    if missing:
        raise StageFailed(f"{report} accepts pairs that are not in {data}: {sorted(missing)[:5]}; "
                          "run the validate stage again")
    return pairs


def run_lmdb(cfg: LmdbConfig, paths: LmdbPaths) -> dict:
    splits = split_pairs(accepted_pairs(paths.data, paths.report), cfg.val_fraction, cfg.min_train_share)
    train = write_split(splits["train"], {"whole": paths.out / "train", "whole_small": paths.out / "train_whole"}, cfg)
    val = write_split(splits["val"], {"whole": paths.out / "val"}, cfg)
    counts = {"train": train["whole"], "train_whole": train["whole_small"], "val": val["whole"]}
    write_json(paths.out / "splits.json", {s: sorted(p.pair_id for p in ps) for s, ps in splits.items()})
    return {"pairs": {s: len(ps) for s, ps in splits.items()}, "images": counts}


def main(argv: list[str] | None = None) -> int:
    return run_stage("lmdb", LmdbPaths, run_lmdb, argv)


if __name__ == "__main__":
    raise SystemExit(main())
