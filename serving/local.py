"""``brighthouse enhance``: the serving engine applied to files on disk.

Output names: a JPEG or PNG keeps its own file name (``room.JPEG`` and ``room.jpg`` stay
apart), a HEIC/HEIF photo is written as JPEG with ``.jpg`` added (``room.heic.jpg``), any other
format as PNG with ``.png`` added (``room.webp.png``), so two inputs never share an output.
Pixels are sRGB and tagged so (``components/data/colour.py``). The output folder may not be the
input folder or inside it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from components.config import ServeConfig
from components.data.imageio import ImageError, encode, read_image
from components.data.pairs import IMAGE_EXTS
from components.registry.model_store import alias_version, fetch
from serving.engine import Engine

KEEPS_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
WRITTEN_AS = {".heic": ("JPEG", ".jpg"), ".heif": ("JPEG", ".jpg")}  # lossy photos stay lossy; others PNG


@dataclass
class EnhanceSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (input, reason)


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    raise FileNotFoundError(f"{path}: no such file or folder")


def output_format(src: Path) -> tuple[str, str]:
    """(Pillow format, suffix added to the input's name) of the result for ``src``."""
    suffix = src.suffix.lower()
    return (KEEPS_FORMAT[suffix], "") if suffix in KEEPS_FORMAT else WRITTEN_AS.get(suffix, ("PNG", ".png"))


def output_path(src: Path, out_dir: Path) -> Path:
    return out_dir / (src.name + output_format(src)[1])


def check_out_dir(path: Path, out_dir: Path) -> None:
    """Refuse, before anything is written, an output folder that is the input folder or inside it."""
    folder = (path if path.is_dir() else path.parent).resolve()
    out = out_dir.resolve()
    if out == folder or folder in out.parents:
        raise ValueError(f"--out {out_dir} is {'the input folder' if out == folder else 'inside the input folder'} "
                         f"{folder}: choose a folder outside it")


def enhance_paths(path: Path, out_dir: Path, cfg: ServeConfig, echo: Callable[[str], None] = print) -> EnhanceSummary:
    """Enhance every image under ``path`` into ``out_dir``; never writes beside the inputs,
    skips outputs that already exist, and lists the files that failed with their reason."""
    inputs = _inputs(path)
    check_out_dir(path, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name, alias = cfg.registry.model_name, cfg.registry.champion_alias
    engine = Engine(fetch(name, alias, alias_version(name, alias)),
                    cfg.runtime, cfg.tile_batch, cfg.batch_window_ms)
    summary = EnhanceSummary()
    for src in tqdm(inputs, unit="photo", disable=None):  # a bar on a terminal, silent in logs
        dst = output_path(src, out_dir)
        if dst.exists():
            echo(f"skip {src} ({dst} exists)")
            summary.skipped.append(src)
            continue
        try:
            photo = read_image(src, int(cfg.max_megapixels * 1_000_000))
        except ImageError as exc:
            echo(f"error: {exc}")
            summary.failed.append((src, str(exc)))
            continue
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(encode(engine.enhance(photo.rgb), output_format(src)[0], icc=photo.icc, exif=photo.exif))
        tmp.replace(dst)
        summary.written.append(dst)
        echo(f"{src} -> {dst} (model version {engine.version})")
    return summary
