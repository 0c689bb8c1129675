"""Reading an upload (size limits first, then the image) and writing the reply image."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request

from components.config import ServeConfig
from components.imageio import Decoded, ImageError, ImageTooLargeError, decode_image, encode

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_bytes(request: Request, limit: int) -> tuple[bytes, str]:
    body = await _read_body(request, limit)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        request._body = body  # Starlette re-reads a cached body when parsing the form
        upload = (await request.form()).get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart upload needs a 'file' field")
        return await upload.read(), upload.filename or "upload"
    return body, "upload"


@dataclass(frozen=True)
class Upload:
    photo: Decoded
    reply_format: str  # a key of FORMATS


def reply_format(requested: str | None, data: bytes) -> str:
    fmt = (requested or ("jpeg" if data[:2] == b"\xff\xd8" else "png")).lower()
    if fmt not in FORMATS:
        raise HTTPException(400, f"format must be one of {sorted(FORMATS)}")
    return fmt


async def decode_upload(request: Request, cfg: ServeConfig, requested_format: str | None) -> Upload:
    """The upload decoded upright, or a 4xx naming what is wrong with it."""
    data, name = await _image_bytes(request, int(cfg.max_upload_mb * 1024 * 1024))
    fmt = reply_format(requested_format, data)
    try:
        return Upload(decode_image(data, name, int(cfg.max_megapixels * 1_000_000)), fmt)
    except ImageTooLargeError as exc:
        raise HTTPException(413, str(exc)) from exc
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from exc


def encode_reply(rgb, upload: Upload) -> tuple[bytes, str]:
    """The enhanced pixels in the reply format, with the upload's ICC profile and EXIF."""
    pil_format, media_type = FORMATS[upload.reply_format]
    return encode(rgb, pil_format, icc=upload.photo.icc, exif=upload.photo.exif), media_type
