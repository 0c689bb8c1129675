"""Receiving an upload (bounded in bytes and time), decoding it, and writing the reply image.

A request holds no enhance slot while its body arrives: a client trickling its upload a byte
a second costs the server a socket and a few bytes, not a place in the queue. What bounds
the bodies being received is a shared byte budget (``serve.max_receiving_mb``: memory, not a
count of clients) and a deadline per request (``serve.upload_timeout_s``: 408, after which
uvicorn closes the connection, since its body was never read to the end).
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from fastapi import HTTPException, Request
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from components.config import ServeConfig
from components.data.imageio import Decoded, ImageError, ImageTooLargeError, decode_image, encode, image_pixels
from serving.metrics import ServingMetrics

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


class ClientGone(Exception):
    """The client closed the connection before its upload arrived: normal, not an error."""


class ReceiveBudget:
    """Bytes of request bodies being received at once, over all requests (one event loop,
    so no lock). An upload that would go over it gets a 503, as a full queue does."""

    def __init__(self, limit_bytes: int, metrics: ServingMetrics) -> None:
        self.limit, self.used, self.metrics = limit_bytes, 0, metrics

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            self.metrics.rejected.inc()
            raise HTTPException(503, f"server busy: {self.used} bytes of uploads arriving (limit {self.limit}); "
                                     "retry shortly", headers={"Retry-After": "1"})
        self.used += n
        self.metrics.receiving_bytes.set(self.used)

    def give(self, n: int) -> None:
        self.used -= n
        self.metrics.receiving_bytes.set(self.used)


async def _read_body(request: Request, limit: int, budget: ReceiveBudget, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:  # "²".isdigit() is True
        raise HTTPException(413, f"upload of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                if size + len(chunk) > limit:
                    raise HTTPException(413, f"upload is over the limit of {limit} bytes")
                budget.take(len(chunk))
                size += len(chunk)
                chunks.append(chunk)
    except TimeoutError as exc:
        budget.metrics.upload_timeouts.inc()
        raise HTTPException(408, f"upload did not arrive within {timeout_s:g} s ({size} bytes received)",
                            headers={"Connection": "close"}) from exc
    except ClientDisconnect as exc:
        raise ClientGone(f"client went away after {size} bytes of its upload") from exc
    finally:
        budget.give(size)  # the body is handed on; admission bounds what happens next
    return b"".join(chunks)


@dataclass(frozen=True)
class Received:
    data: bytes
    name: str


async def receive_upload(request: Request, cfg: ServeConfig, budget: ReceiveBudget) -> Received:
    """The upload's bytes (raw body or multipart field ``file``), within the byte and time limits."""
    body = await _read_body(request, int(cfg.max_upload_mb * 1024 * 1024), budget, cfg.upload_timeout_s)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Received(body, "upload")
    request._body = body  # Starlette re-reads a cached body when parsing the form
    try:
        form = await request.form()
    except MultiPartException as exc:  # Starlette turns it into a 400 only inside an app
        raise HTTPException(400, f"malformed multipart upload: {exc.message}") from exc
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart upload needs a 'file' field")
        return Received(await upload.read(), upload.filename or "upload")
    finally:
        await form.close()  # parts over 1 MB were spooled to temporary files


@dataclass(frozen=True)
class Upload:
    photo: Decoded
    reply_format: str  # a key of FORMATS


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1")


def reply_format(requested: str | None, data: bytes) -> str:
    """As asked, else JPEG for a JPEG or HEIC upload (a photo stays lossy) and PNG for the rest."""
    fmt = (requested or ("jpeg" if data[:2] == b"\xff\xd8" or _is_heif(data) else "png")).lower()
    if fmt not in FORMATS:
        raise HTTPException(400, f"format must be one of {sorted(FORMATS)}")
    return fmt


@contextmanager
def _as_http_errors() -> Iterator[None]:
    try:
        yield
    except ImageTooLargeError as exc:
        raise HTTPException(413, str(exc)) from exc
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from exc


def upload_megapixels(received: Received, cfg: ServeConfig) -> float:
    """The photo's size from its header alone, or the 4xx decoding would give (what admission holds)."""
    with _as_http_errors():
        return image_pixels(received.data, received.name, int(cfg.max_megapixels * 1_000_000)) / 1e6


def decode_upload(received: Received, cfg: ServeConfig, requested_format: str | None) -> Upload:
    """The upload decoded upright, or a 4xx naming what is wrong with it (CPU work: run it
    in a worker thread, under admission)."""
    fmt = reply_format(requested_format, received.data)
    with _as_http_errors():
        return Upload(decode_image(received.data, received.name, int(cfg.max_megapixels * 1_000_000)), fmt)


def encode_reply(rgb: np.ndarray, upload: Upload) -> tuple[bytes, str]:
    """The enhanced pixels in the reply format, with their (sRGB) ICC profile and the upload's EXIF."""
    pil_format, media_type = FORMATS[upload.reply_format]
    return encode(rgb, pil_format, icc=upload.photo.icc, exif=upload.photo.exif), media_type
