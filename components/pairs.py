"""Find input/target pairs in the folder layouts users deliver.

Accepted layouts (checked in this order):
- ``input/`` + ``target/`` (or BasicSR's ``lq/`` + ``gt/``) with matching file names;
- ``<id>_src.<ext>`` (unedited) beside ``<id>_tar.<ext>`` (edited) in one folder, as the
  editors deliver them.
A file without its partner is reported, never silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}
FOLDER_LAYOUTS = (("input", "target"), ("lq", "gt"))
SRC, TAR = "_src", "_tar"


@dataclass(frozen=True)
class Pair:
    pair_id: str
    input: Path | None
    target: Path | None


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def _pairs_from_folders(inp: Path, tar: Path) -> list[Pair]:
    a, b = _images(inp), _images(tar)
    return [Pair(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())]


def _pairs_from_suffixes(folder: Path) -> list[Pair]:
    src: dict[str, Path] = {}
    tar: dict[str, Path] = {}
    for stem, path in _images(folder).items():
        if stem.endswith(SRC):
            src[stem[: -len(SRC)]] = path
        elif stem.endswith(TAR):
            tar[stem[: -len(TAR)]] = path
    return [Pair(k, src.get(k), tar.get(k)) for k in sorted(src.keys() | tar.keys())]


def find_pairs(folder: str | Path) -> list[Pair]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    for inp, tar in FOLDER_LAYOUTS:
        if (folder / inp).is_dir() and (folder / tar).is_dir():
            return _pairs_from_folders(folder / inp, folder / tar)
    return _pairs_from_suffixes(folder)
