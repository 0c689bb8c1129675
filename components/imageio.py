"""Image decoding with the checks every entry point needs (files, uploads, LMDB).

Light on purpose (Pillow + NumPy only): serving imports it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 60_000_000


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the reason."""


class ImageTooLargeError(ImageError):
    """More pixels than the configured limit (checked from the header, before decoding)."""


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits instead of clipping everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray((arr / peak * 255.0 + 0.5).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        raise ImageError(f"{name}: has an alpha channel; flatten it before enhancing")
    if img.mode in ("L", "P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        return img.convert("RGB")
    raise ImageError(f"{name}: unsupported image mode {img.mode}")


def decode_rgb(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode bytes to an upright HxWx3 uint8 RGB array (EXIF orientation applied)."""
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        img = Image.open(io.BytesIO(data))
        # The header is read lazily: refuse decompression bombs before decoding pixels.
        if img.width * img.height > max_pixels:
            raise ImageTooLargeError(
                f"{name}: {img.width}x{img.height} is over the limit of {max_pixels} pixels"
            )
        img.load()
        img = ImageOps.exif_transpose(img)
        return np.asarray(_to_rgb(img, name))
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: not a readable image ({exc})") from exc


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from exc
    return decode_rgb(data, str(path), max_pixels)


def encode(image: np.ndarray, fmt: str = "PNG", quality: int = 95) -> bytes:
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    Image.fromarray(image).save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()
