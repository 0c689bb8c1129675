"""Find input/target pairs in the folder layouts users deliver.

Accepted layouts (checked in this order):
- ``input/`` + ``target/`` (or BasicSR's ``lq/`` + ``gt/``) with matching file names;
- ``<id>_src.<ext>`` (unedited) beside ``<id>_tar.<ext>`` (edited) in one folder, as the
  editors deliver them, optionally with a ``train.jsonl`` manifest: one JSON object per line
  naming the input (``src``/``input``/``source``/``lq``) and target (``tar``/``target``/``gt``/
  ``edited``) files relative to the folder, and optionally the pair ``id``. Listed pairs come
  first; image files the manifest does not mention are still paired by their suffixes.
A file without its partner is reported, never silently dropped: its partner is ``None``, or
the listed path when a manifest names a file that is not there.

``find_pairs(folder, confined=True)`` is for deliveries from outside: each pair whose id is
not a plain name or whose files are not regular files inside ``folder`` carries the reason
in ``refused``, and nothing may read its files (rules in ``components.data.confine``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.data.confine import outside, unsafe_id

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif"}
FOLDER_LAYOUTS = (("input", "target"), ("lq", "gt"))
SRC, TAR = "_src", "_tar"
MANIFEST = "train.jsonl"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # about 100k lines: a delivery is a few hundred pairs
INPUT_KEYS = ("src", "input", "source", "lq")
TARGET_KEYS = ("tar", "target", "gt", "edited")


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Pair:
    pair_id: str
    input: Path | None
    target: Path | None
    refused: str | None = None  # why its files must not be read (confined discovery only)

    @property
    def complete(self) -> bool:
        return not self.refused and all(p is not None and p.is_file() for p in (self.input, self.target))

    def files(self) -> tuple[Path, Path]:
        """(input, target) of a pair that has both; one that lacks either is an error naming it."""
        if self.input is None or self.target is None:
            raise ValueError(f"pair {self.pair_id!r} has no {'input' if self.input is None else 'target'} file")
        return self.input, self.target


def confine(pair: Pair, root: Path) -> Pair:
    """``pair`` with the reason its id or files may not be used from the delivery ``root``."""
    reasons = [unsafe_id(pair.pair_id)] + [outside(root, p) for p in (pair.input, pair.target) if p is not None]
    found = [r for r in reasons if r]
    return Pair(pair.pair_id, pair.input, pair.target, "; ".join(found)) if found else pair


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def _pairs_from_folders(inp: Path, tar: Path) -> list[Pair]:
    a, b = _images(inp), _images(tar)
    return [Pair(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())]


def _pairs_from_suffixes(folder: Path, skip: set[Path]) -> list[Pair]:
    src: dict[str, Path] = {}
    tar: dict[str, Path] = {}
    for stem, path in _images(folder).items():
        if path in skip:
            continue
        if stem.endswith(SRC):
            src[stem[: -len(SRC)]] = path
        elif stem.endswith(TAR):
            tar[stem[: -len(TAR)]] = path
    return [Pair(k, src.get(k), tar.get(k)) for k in sorted(src.keys() | tar.keys())]


def _manifest_entry(entry: object, folder: Path, where: str) -> Pair:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    inp = next((entry[k] for k in INPUT_KEYS if k in entry), None)
    tar = next((entry[k] for k in TARGET_KEYS if k in entry), None)
    if not isinstance(inp, str) or not isinstance(tar, str):
        raise ManifestError(f"{where}: needs an input ({'/'.join(INPUT_KEYS)}) and a target "
                            f"({'/'.join(TARGET_KEYS)}) file name")
    stem = Path(inp).stem
    pair_id = str(entry.get("id") or (stem[: -len(SRC)] if stem.endswith(SRC) else stem))
    return Pair(pair_id, folder / inp, folder / tar)


def pairs_from_manifest(folder: Path) -> list[Pair]:
    path = folder / MANIFEST
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        pairs.append(_manifest_entry(entry, folder, f"{path}:{number}"))
    ids = [p.pair_id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ManifestError(f"{path}: pair ids listed twice: {sorted({i for i in ids if ids.count(i) > 1})}")
    return pairs


def find_pairs(folder: str | Path, confined: bool = False) -> list[Pair]:
    """Every pair in ``folder``, sorted by id; ``confined`` marks the ones a delivery may not
    use (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    pairs = _find(folder, confined)
    return [confine(p, folder) for p in pairs] if confined else pairs


def _find(folder: Path, confined: bool) -> list[Pair]:
    for inp, tar in FOLDER_LAYOUTS:
        if (folder / inp).is_dir() and (folder / tar).is_dir():
            return _pairs_from_folders(folder / inp, folder / tar)
    manifest = folder / MANIFEST
    if confined and (manifest.exists() or manifest.is_symlink()):
        reason = outside(folder, manifest) or (None if manifest.stat().st_size <= MAX_MANIFEST_BYTES
                                               else f"{manifest}: over {MAX_MANIFEST_BYTES} bytes")
        if reason:
            raise ManifestError(f"{reason}; nothing in the delivery was read")
    listed = pairs_from_manifest(folder) if manifest.is_file() else []
    mentioned = {p for pair in listed for p in (pair.input, pair.target) if p is not None}
    rest = _pairs_from_suffixes(folder, mentioned)
    clash = sorted({p.pair_id for p in listed} & {p.pair_id for p in rest})
    if clash:
        raise ManifestError(f"{folder / MANIFEST}: ids {clash} are listed there and also used by "
                            "other <id>_src/<id>_tar files in the folder")
    return sorted(listed + rest, key=lambda p: p.pair_id)
