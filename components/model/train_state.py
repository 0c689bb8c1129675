"""What an interrupted training needs to continue exactly: RNG states, an atomic checkpoint
file, and a fingerprint so a checkpoint is only resumed by the same config on the same data."""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch
import yaml

# Paths to outputs may differ between attempts (per-run folders); they don't change the result.
_NOT_FINGERPRINTED = ("path", "logger")


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def fingerprint(opt: dict) -> str:
    """Same options and same training LMDBs (their key lists and sizes) -> same fingerprint."""
    h = hashlib.sha256(yaml.safe_dump({k: v for k, v in opt.items() if k not in _NOT_FINGERPRINTED},
                                      sort_keys=True).encode())
    train_ds = opt["datasets"]["train"]
    for side in ("lq", "gt"):
        db = Path(train_ds[f"dataroot_{side}"])
        h.update((db / "meta_info.txt").read_bytes())
        h.update(str((db / "data.mdb").stat().st_size).encode())
    return h.hexdigest()[:16]


def save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # a crash mid-save leaves the previous checkpoint intact


def load_state(path: Path) -> dict | None:
    if not path.is_file():
        return None
    # RNG states hold numpy arrays and tuples: this file is our own, written by save_atomic.
    return torch.load(path, map_location="cpu", weights_only=False)
