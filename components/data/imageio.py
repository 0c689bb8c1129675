"""Image decoding with the checks every entry point needs (files, uploads, LMDB).

Light on purpose (Pillow + NumPy only): serving imports it.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from components.data.colour import register_heif, to_srgb

DEFAULT_MAX_PIXELS = 60_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION_TAG = 0x0112
_GREY_16 = ("I;16", "I;16B", "I;16L", "I")


class ImageError(ValueError):
    """An image that cannot be used; the message names the file and the reason."""


class ImageTooLargeError(ImageError):
    """More pixels than the configured limit (checked from the header, before decoding)."""


@dataclass
class Decoded:
    """An upright 8-bit sRGB image and what it took to get there."""

    rgb: np.ndarray
    orientation: int = 1            # EXIF orientation tag as stored in the file (1 = upright)
    notes: list[str] = field(default_factory=list)  # conversions applied, in plain words
    icc: bytes | None = None        # the pixels' colour profile (sRGB), to embed in what is written back
    exif: bytes | None = None       # the EXIF block with orientation reset (pixels are upright)
    colour: str | None = None       # how the pixels were brought into sRGB, when they were not in it


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def mode_notes(img: Image.Image, data: bytes) -> list[str]:
    """What is unusual about this file's pixel format for an 8-bit sRGB pipeline."""
    notes = []
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24] == 16:
        notes.append("16-bit PNG reduced to 8 bits")
    kinds = {"CMYK": "CMYK converted to RGB", "L": "greyscale expanded to RGB", "1": "1-bit expanded to RGB",
             "P": "palette image expanded to RGB", "LA": "greyscale expanded to RGB",
             "PA": "palette image expanded to RGB"}
    if img.mode in kinds:
        notes.append(kinds[img.mode])
    elif img.mode in _GREY_16:
        notes.append("greyscale expanded to RGB")
    if _has_alpha(img):
        notes.append("alpha channel flattened onto white")
    return notes


def _to_rgb(img: Image.Image, name: str, flatten_alpha: bool) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in _GREY_16:
        # 16-bit grey: scale to 8 bits instead of clipping everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray((arr / peak * 255.0 + 0.5).astype(np.uint8), "L")
    if _has_alpha(img):
        if not flatten_alpha:
            raise ImageError(f"{name}: has an alpha channel; flatten it before enhancing")
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("L", "P", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        return img.convert("RGB")
    raise ImageError(f"{name}: unsupported image mode {img.mode}")


def _to_working_rgb(img: Image.Image, icc: bytes | None, name: str,
                    flatten_alpha: bool) -> tuple[Image.Image, bytes | None, str | None]:
    """8-bit RGB in sRGB, through the embedded profile where there is one (a CMYK profile
    converts CMYK pixels directly)."""
    if img.mode != "CMYK":
        img = _to_rgb(img, name, flatten_alpha)
    converted, icc, note = to_srgb(img, icc)
    return (converted if converted.mode == "RGB" else _to_rgb(converted, name, flatten_alpha)), icc, note


@contextmanager
def _named_errors(name: str, max_pixels: int) -> Iterator[None]:
    """Whatever Pillow raises on a hostile file becomes an ``ImageError`` naming it."""
    try:
        yield
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own, far higher, limit tripped first
        raise ImageTooLargeError(f"{name}: over the limit of {max_pixels} pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not a readable image (unknown format or corrupt header)") from exc
    except Exception as exc:  # Pillow's plugins raise anything on hostile files (KeyError, TypeError, ...)
        raise ImageError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc


def _open_header(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError(f"{name}: empty file")
    register_heif()
    img = Image.open(io.BytesIO(data))
    # The header is read lazily: refuse decompression bombs before decoding pixels.
    if img.width * img.height > max_pixels:
        raise ImageTooLargeError(f"{name}: {img.width}x{img.height} is over the limit of {max_pixels} pixels")
    return img


def image_pixels(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """How many pixels decoding will produce, from the header alone (cheap: what serving
    admits a request by), with ``decode_image``'s header checks and errors."""
    with _named_errors(name, max_pixels):
        img = _open_header(data, name, max_pixels)
        return img.width * img.height


def decode_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS,
                 flatten_alpha: bool = False, upright: bool = True) -> Decoded:
    """Decode bytes (JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF) to HxWx3 uint8 sRGB, converted
    from the embedded ICC profile, EXIF orientation applied unless ``upright`` is False."""
    with _named_errors(name, max_pixels):
        img = _open_header(data, name, max_pixels)
        if getattr(img, "is_animated", False) and img.format != "MPO":  # MPO: a camera JPEG + preview
            frames = getattr(img, "n_frames", "several")
            raise ImageError(f"{name}: an animated or multi-frame {img.format} ({frames} frames); "
                             "only still photos can be used")
        img.load()
        exif = img.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        notes, icc = mode_notes(img, data), img.info.get("icc_profile")
        if upright:
            img = ImageOps.exif_transpose(img)
            exif[ORIENTATION_TAG] = 1
        img, icc, colour = _to_working_rgb(img, icc, name, flatten_alpha)
        return Decoded(np.asarray(img), orientation, notes, icc, exif.tobytes() if len(exif) else None, colour)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, flatten_alpha: bool = False,
               upright: bool = True) -> Decoded:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from exc
    return decode_image(data, str(path), max_pixels, flatten_alpha, upright)


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, flatten_alpha: bool = False) -> np.ndarray:
    return read_image(path, max_pixels, flatten_alpha).rgb


def encode(image: np.ndarray, fmt: str = "PNG", quality: int = 95, icc: bytes | None = None,
           exif: bytes | None = None) -> bytes:
    """Encode RGB uint8; ``icc``/``exif`` from ``Decoded`` carry the photo's profile and metadata."""
    buf = io.BytesIO()
    kwargs: dict = {"quality": quality} if fmt.upper() in ("JPEG", "WEBP") else {}
    if icc:
        kwargs["icc_profile"] = icc
    if exif:
        kwargs["exif"] = exif
    Image.fromarray(image).save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()


def jpeg_data_uri(image: np.ndarray, quality: int = 85) -> str:
    """RGB uint8 as an inline ``data:`` JPEG, for pages that must travel as one file."""
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(encode(image, "JPEG", quality)).decode()


def working_copy(image: np.ndarray, long_side: int) -> np.ndarray:
    """The photo (uint8 HxWx3) shrunk by area averaging so its long side is ``long_side``;
    a photo already that small is used as it is (never enlarged)."""
    import cv2

    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
