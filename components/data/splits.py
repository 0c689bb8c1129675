"""How pairs are held out: the one home of the split, written by ``lmdb`` as ``splits.json``.

Two schemes:
- ``hash``: a fixed val split, the pairs whose id hashes under ``lmdb.val_fraction``; a pair's
  split never changes as data grows, so a later model is scored on pairs no earlier one trained on;
- ``cross_validation``, for sets under ``lmdb.cross_validate_below`` pairs, where a val split
  would take pairs a client needs for training (10 pairs: 3 to val): the pairs fall into
  ``lmdb.folds`` folds, fold ``i``'s model trains on the others and is scored on fold ``i``, so
  every pair trains some model and every pair is scored by one that never saw it: the gate's
  estimate. What ships (``train.ships``) is one more model on every pair, or those models
  averaged (``components/model/ensemble.py``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

SPLITS_FILE = "splits.json"
FOLDS_DIR = "folds"  # lmdb/folds/<i>/ holds fold i's train (the other folds) and val (fold i)


class SplitRecord(BaseModel):
    """What ``lmdb`` held out, read by train, evaluate and register (pair ids, not LMDB keys)."""
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    scheme: Literal["hash", "cross_validation"]
    train: list[str]               # the pairs the shipped model learns from
    val: list[str]                 # hash: held out; cross_validation: every pair, each scored out of fold
    folds: list[list[str]] = []    # cross_validation: fold i's pairs, held out from fold i's model

    @property
    def cross_validated(self) -> bool:
        return self.scheme == "cross_validation"


def read_splits(path: Path) -> SplitRecord:
    """``splits.json`` as written by the lmdb stage; a missing, old or foreign file is named."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the lmdb stage again (dvc repro lmdb)")
    try:
        return SplitRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ValueError(f"{path} is not a split record of this version: run the lmdb stage again "
                         f"(dvc repro lmdb): {exc.errors()[0]['msg']}") from exc


def split_bucket(pair_id: str) -> float:
    """A pure function of the id, uniform in [0, 1]."""
    return int(hashlib.sha256(pair_id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(pair_id: str, val_fraction: float) -> str:
    """'train' or 'val' as a pure function of the id: new data never moves old pairs."""
    return "val" if split_bucket(pair_id) < val_fraction else "train"


def hash_split(ids: list[str], val_fraction: float, min_train_share: float = 0.7) -> dict[str, list[str]]:
    """Val: the ids that hash under ``val_fraction`` (so a pair's split does not change as data
    grows), with two bounds that only bind on small sets, where the hash alone is lumpy (it once
    gave 6 of 10 pairs to val): train keeps at least ``min_train_share`` of the pairs (the
    highest-hash candidates train instead), and val gets at least one pair (the lowest hash)."""
    ranked = sorted(ids, key=lambda i: (split_bucket(i), i))
    most_val = max(1, int(len(ids) * (1 - min_train_share) + 1e-9))
    val = set([i for i in ranked if split_of(i, val_fraction) == "val"][:most_val] or ranked[:1])
    return {"train": [i for i in ids if i not in val], "val": [i for i in ids if i in val]}


def assign_folds(ids: list[str], k: int) -> list[list[str]]:
    """``min(k, len(ids))`` folds whose sizes differ by at most one: ids ranked by their hash,
    dealt out in turn (a hash alone would leave a fold empty on 10 pairs)."""
    ranked = sorted(ids, key=lambda i: (split_bucket(i), i))
    k = min(k, len(ranked))
    return [sorted(ranked[f::k]) for f in range(k)]


def make_split(ids: list[str], val_fraction: float, min_train_share: float, cross_validate_below: int,
               folds: int) -> SplitRecord:
    """Cross-validation under ``cross_validate_below`` pairs, else the hash split."""
    if len(ids) < 2:
        raise ValueError(f"{len(ids)} accepted pair(s): at least 2 are needed (one to train, one to validate)")
    if len(ids) < cross_validate_below:
        return SplitRecord(scheme="cross_validation", train=sorted(ids), val=sorted(ids),
                           folds=assign_folds(ids, folds))
    split = hash_split(ids, val_fraction, min_train_share)
    return SplitRecord(scheme="hash", train=sorted(split["train"]), val=sorted(split["val"]))


def lmdb_key(pair_id: str) -> str:
    # BasicSR derives keys with line.split(".")[0], so keys must be ASCII without dots.
    key = "".join(c if c.isalnum() or c in "-_" else "_" for c in pair_id)
    return key.encode("ascii", "replace").decode("ascii")


def fold_dirs(lmdb_dir: Path) -> list[Path]:
    """Fold i's LMDB folder for each fold (empty for the hash split), in fold order."""
    root = lmdb_dir / FOLDS_DIR
    return sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)) if root.is_dir() else []


def comparable_pairs(split: SplitRecord, champion_trained_on: list[str] | None) -> list[str]:
    """The LMDB keys of the scored pairs the champion did not train on. A champion that does not
    record its pairs (registered before they were) came from a hash split, whose val pairs
    stay val, so it is compared on a val split and on nothing cross-validated."""
    if champion_trained_on is None:
        return [] if split.cross_validated else [lmdb_key(i) for i in split.val]
    seen = set(champion_trained_on)
    return [lmdb_key(i) for i in split.val if i not in seen]
