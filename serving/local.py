"""``brighthouse enhance``: the serving engine applied to files on disk."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from components.config import ServeConfig
from components.imageio import ImageError, encode, read_image
from components.pairs import IMAGE_EXTS
from serving.engine import Engine
from components.model_store import alias_version, fetch


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    raise FileNotFoundError(f"{path}: no such file or folder")


def output_path(src: Path, out_dir: Path) -> Path:
    suffix = ".jpg" if src.suffix.lower() in (".jpg", ".jpeg") else ".png"
    return out_dir / f"{src.stem}{suffix}"


def enhance_paths(path: Path, out_dir: Path, cfg: ServeConfig, echo: Callable[[str], None] = print) -> int:
    """Enhance every image under ``path`` into ``out_dir``; never overwrites an input,
    skips outputs that already exist, and reports unreadable files by name."""
    inputs = _inputs(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(fetch(cfg.model_name, cfg.alias, alias_version(cfg.model_name, cfg.alias)),
                    cfg.runtime, cfg.tile_batch, cfg.batch_window_ms)
    written = 0
    for src in tqdm(inputs, unit="photo", disable=None):  # a bar on a terminal, silent in logs
        dst = output_path(src, out_dir)
        if dst.resolve() == src.resolve():
            raise ValueError(f"{dst} would overwrite its input; choose another --out folder")
        if dst.exists():
            echo(f"skip {src} ({dst} exists)")
            continue
        try:
            photo = read_image(src, int(cfg.max_megapixels * 1_000_000))
        except ImageError as exc:
            echo(f"error: {exc}")
            continue
        fmt = "JPEG" if dst.suffix == ".jpg" else "PNG"
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(encode(engine.enhance(photo.rgb), fmt, icc=photo.icc, exif=photo.exif))
        tmp.replace(dst)
        written += 1
        echo(f"{src} -> {dst} (model version {engine.version})")
    return written
