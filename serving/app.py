"""The HTTP service: ``POST /v1/enhance`` on the model that holds the serving alias.

On start it resolves the alias (``champion`` by default) and loads that version. A poller
checks the alias every ``serve.poll_seconds``; when it moves, the new version is loaded and
warmed beside the old one, then swapped in one assignment: requests already running keep
the engine they started with, and every response names its version in ``X-Model-Version``.
"""
from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from components.config import ServeConfig
from components.imageio import ImageError, ImageTooLargeError, decode_rgb, encode
from serving.engine import Engine
from components.model_store import NoModelError, alias_version, fetch

log = logging.getLogger(__name__)
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


class ModelHolder:
    """The current engine, swapped atomically when the alias moves."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.engine: Engine | None = None
        self.error = "not loaded yet"

    def refresh(self) -> None:
        try:
            version = alias_version(self.cfg.model_name, self.cfg.alias)
        except NoModelError as exc:
            self.error = str(exc)
            return
        if self.engine is not None and self.engine.version == version:
            return
        engine = Engine(fetch(self.cfg.model_name, self.cfg.alias, version))
        engine.warm_up()
        old, self.engine = self.engine, engine
        log.info("serving %s version %s (was %s)", self.cfg.model_name, version, old and old.version)


def _poll(holder: ModelHolder, stop: threading.Event) -> None:
    while not stop.wait(holder.cfg.poll_seconds):
        try:
            holder.refresh()
        except Exception:  # keep serving the old model if the registry hiccups
            log.exception("alias poll failed; still serving the previous version")


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


def create_app(cfg: ServeConfig) -> FastAPI:
    holder = ModelHolder(cfg)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(holder.refresh)
        poller = threading.Thread(target=_poll, args=(holder, stop), daemon=True)
        poller.start()
        yield
        stop.set()

    app = FastAPI(title="brighthouse", lifespan=lifespan)
    app.state.holder = holder

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict:
        if holder.engine is None:
            response.status_code = 503
            return {"ready": False, "reason": holder.error}
        return {"ready": True, "model": cfg.model_name, "version": holder.engine.version}

    @app.post("/v1/enhance")
    async def enhance(request: Request, format: str | None = None) -> Response:
        engine = holder.engine  # pinned for this request, even if a swap happens meanwhile
        if engine is None:
            raise HTTPException(503, f"no model loaded: {holder.error}")
        data, name = await _image_bytes(request, int(cfg.max_upload_mb * 1024 * 1024))
        try:
            rgb = decode_rgb(data, name, int(cfg.max_megapixels * 1_000_000))
        except ImageTooLargeError as exc:
            raise HTTPException(413, str(exc)) from exc
        except ImageError as exc:
            raise HTTPException(400, str(exc)) from exc
        fmt = (format or ("jpeg" if data[:2] == b"\xff\xd8" else "png")).lower()
        if fmt not in FORMATS:
            raise HTTPException(400, f"format must be one of {sorted(FORMATS)}")
        out = await run_in_threadpool(engine.enhance, rgb)
        pil_format, media_type = FORMATS[fmt]
        body = await run_in_threadpool(encode, out, pil_format)
        return Response(body, media_type=media_type, headers={"X-Model-Version": engine.version})

    return app
