"""The HTTP service: ``POST /v1/enhance`` on the model that holds the serving alias.

On start it resolves the alias (``champion`` by default), loads that version on the best
runtime here and warms it up; only then is it ready. A poller checks the alias every
``serve.poll_seconds``; when it moves, the new version is loaded and warmed beside the old
one, then swapped in one assignment: requests already running finish on the engine they
started with, and every response names its version in ``X-Model-Version``.

A request is admitted by its photo's megapixels (``serving/admission.py``), and only once its
whole body has arrived (``serving/uploads.py`` bounds uploads), so slow clients hold nothing;
the batcher then serves the admitted requests oldest first (``serving/batcher.py``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from components.config import ServeConfig
from components.registry.model_store import ModelUnusable, NoModelError, RegistryUnavailable, alias_version, fetch
from serving.admission import PixelAdmission, give_freed_memory_back
from serving.engine import Engine
from serving.metrics import ServingMetrics
from serving.uploads import ClientGone, ReceiveBudget, decode_upload, encode_reply, receive_upload, upload_megapixels

log = logging.getLogger(__name__)
TRY_PAGE = Path(__file__).parent / "static" / "try.html"
# The try-it page may talk to this server only: nothing is fetched from anywhere else.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; "
            "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")


class ModelHolder:
    """The current engine, swapped atomically when the alias moves. Registry faults and
    versions that cannot be loaded never take the loaded engine away; each is logged once
    when it starts and once when it clears, and shown in ``/readyz`` and ``/metrics``."""

    def __init__(self, cfg: ServeConfig, metrics: ServingMetrics) -> None:
        self.cfg, self.metrics = cfg, metrics
        self.engine: Engine | None = None
        self.error = "not loaded yet"
        self.problem: str | None = None  # the registry or candidate-version fault, while it lasts

    def refresh(self) -> None:
        problem, registry_up = None, 1
        try:
            self._refresh()
        except RegistryUnavailable as exc:
            problem, registry_up = str(exc), 0
        except (NoModelError, ModelUnusable) as exc:
            problem = str(exc)
        self.error = problem or self.error
        self.metrics.registry_up.set(registry_up)
        self._report(problem)

    def _refresh(self) -> None:
        c, name, alias = self.cfg, self.cfg.registry.model_name, self.cfg.registry.champion_alias
        version = alias_version(name, alias)
        if self.engine is not None and self.engine.version == version:
            return
        ref = fetch(name, alias, version)
        try:
            engine = Engine(ref, c.runtime, c.tile_batch, c.batch_window_ms)
            engine.warm_up()
        except Exception as exc:  # a broken ONNX, a runtime that refuses it
            raise ModelUnusable(f"{name} version {version} failed to load: {type(exc).__name__}: "
                                f"{str(exc)[:300]}") from exc
        old, self.engine = self.engine, engine
        self.metrics.serving(name, version, engine.runtime)
        if old is not None:
            old.close()  # its in-flight requests finish; new ones already use the new engine
        log.info("serving %s version %s on %s (was %s)", name, version, engine.runtime, old and old.version)

    def _report(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        serving = f"still serving version {self.engine.version}" if self.engine else "no model loaded"
        if problem:
            log.error("%s (%s; retrying every %g s)", problem, serving, self.cfg.poll_seconds)
        else:
            log.info("registry problem cleared: %s", self.problem)
        self.problem = problem


def _poll(holder: ModelHolder, stop: threading.Event) -> None:
    while not stop.wait(holder.cfg.poll_seconds):
        try:
            holder.refresh()
        except Exception:  # an engine that fails to build: keep serving the old model
            log.exception("alias poll failed; still serving the previous version")


def _lifespan(holder: ModelHolder) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        await run_in_threadpool(holder.refresh)
        threading.Thread(target=_poll, args=(holder, stop), daemon=True, name="alias-poll").start()
        yield
        stop.set()

    return lifespan


def create_app(cfg: ServeConfig) -> FastAPI:
    metrics = ServingMetrics()
    holder = ModelHolder(cfg, metrics)
    admission = PixelAdmission(cfg.max_inflight_megapixels, cfg.max_waiting, cfg.max_wait_s, metrics)
    log.info("%s", admission.describe())
    budget = ReceiveBudget(int(cfg.max_receiving_mb * 1024 * 1024), metrics)
    app = FastAPI(title="brighthouse", description="Real-estate photo enhancement (NAFNet)",
                  lifespan=_lifespan(holder))
    app.state.holder = holder
    _add_status_routes(app, holder, metrics)
    _add_try_page(app, cfg)

    @app.post("/v1/enhance", responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    async def enhance(request: Request, format: str | None = None) -> Response:
        """Enhance a JPEG/PNG/WebP/HEIC (raw body or multipart field ``file``); JPEG or HEIC in ->
        JPEG out unless ``?format=png|jpeg``. Pixels come back upright in sRGB (converted from
        the photo's ICC profile) with the photo's EXIF."""
        start, status = time.perf_counter(), "error"
        try:
            received = await receive_upload(request, cfg, budget)  # holds no admission yet
            arrived = time.monotonic()
            megapixels = await run_in_threadpool(upload_megapixels, received, cfg)
            async with admission.hold(megapixels):
                engine = _engine_or_503(holder)  # pinned for this request, even across a swap
                upload = await run_in_threadpool(decode_upload, received, cfg, format)
                out = await run_in_threadpool(engine.enhance, upload.photo.rgb, arrived)
                body, media_type = await run_in_threadpool(encode_reply, out, upload)
                metrics.megapixels.inc(out.shape[0] * out.shape[1] / 1e6)
                status = "ok"
                return Response(body, media_type=media_type, headers={"X-Model-Version": engine.version})
        except ClientGone as exc:  # nobody to answer; one quiet line, not a traceback
            status = "disconnected"
            metrics.disconnects.inc()
            log.info("%s %s: %s", request.client.host if request.client else "?", request.url.path, exc)
            return Response(status_code=499)
        finally:
            metrics.latency.labels(status).observe(time.perf_counter() - start)
            await run_in_threadpool(give_freed_memory_back)

    return app


def try_page(cfg: ServeConfig) -> str:
    """The try-it page with this server's upload limits written in."""
    values = {"max_upload_mb": f"{cfg.max_upload_mb:g}", "max_megapixels": f"{cfg.max_megapixels:g}",
              "max_upload_bytes": str(int(cfg.max_upload_mb * 1024 * 1024))}
    page = TRY_PAGE.read_text(encoding="utf-8")
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", value)
    return page


def _add_try_page(app: FastAPI, cfg: ServeConfig) -> None:
    page = try_page(cfg)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        """Choose or drop a photo, see it before and after, download the result."""
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"})


def _engine_or_503(holder: ModelHolder) -> Engine:
    if holder.engine is None:
        raise HTTPException(503, f"no model loaded: {holder.error}")
    return holder.engine


def _add_status_routes(app: FastAPI, holder: ModelHolder, metrics: ServingMetrics) -> None:
    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(response: Response) -> dict:
        if holder.engine is None:
            response.status_code = 503
            return {"ready": False, "reason": holder.error}
        ready = {"ready": True, "model": holder.cfg.registry.model_name, "version": holder.engine.version}
        return {**ready, "problem": holder.problem} if holder.problem else ready

    @app.get("/v1/model")
    def model() -> dict:
        """The version being served, its alias, runtime, mode (tiled / global_view), tiling and lineage tags."""
        engine = _engine_or_503(holder)
        ref = engine.ref
        return {"name": ref.name, "version": ref.version, "alias": ref.alias, "runtime": engine.runtime,
                "mode": engine.spec.mode, "tiling": ref.metadata.inference.tiling.model_dump(),
                "tile_batch": engine.tile_batch,
                "metadata": ref.metadata.model_dump(mode="json"),
                "lineage": ref.tags}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")
