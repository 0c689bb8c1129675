"""Admission by the pixels in flight, first come first served.

What a request costs the server is proportional to its photo's pixels (the decoded photo,
the edit, blending bands and the reply: see bench/README.md for the bytes per megapixel of
each mode), not to the number of requests. So a request whose upload has arrived holds its
photo's megapixels, read from the image header, against ``serve.max_inflight_megapixels``:
- a photo larger than the whole budget can never run: 413, saying so;
- one that does not fit now waits, in arrival order, in a queue of at most
  ``serve.max_waiting`` requests for at most ``serve.max_wait_s``; past either, 503 with
  Retry-After, so clients back off instead of piling up;
- nobody overtakes: a small photo behind a large one waits for it (arrival order is the
  promise, and it keeps a stream of small photos from starving a large one).

The server's peak memory is then its base plus the budget times the bytes per megapixel,
whatever mix of sizes arrives. Runs on the event loop only, so it needs no lock.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import HTTPException

from serving.metrics import ServingMetrics

# What one admitted megapixel costs the server on CPU, tiled or global_view, measured with
# bench/serving_load.py: 10-12 MB one photo at a time; 14.3 MB with 16 full-size photos at once
# and 18.7 MB under Locust's mix of sizes (each thread allocates from its own malloc arena). It
# is the upload decoded (3 bytes a pixel), the edit (3), the reply's encoding and Pillow's
# copies. The memory a budget costs is this times the budget in MP.
MB_PER_MEGAPIXEL = 19.0


def give_freed_memory_back() -> None:
    """Return the memory a finished request freed to the OS (glibc's ``malloc_trim``, all arenas).

    glibc keeps freed blocks in per-thread heaps for reuse. Under concurrent load that left the
    server's RSS near twice what the admitted megapixels hold; trimming once per request keeps
    RSS near what requests hold now, at a small cost per photo. No-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        if name:
            ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


@dataclass
class _Waiter:
    megapixels: float
    granted: asyncio.Future


class PixelAdmission:
    def __init__(self, budget_mp: float, max_waiting: int, max_wait_s: float, metrics: ServingMetrics) -> None:
        self.budget, self.max_waiting, self.max_wait_s = budget_mp, max_waiting, max_wait_s
        self.metrics, self.used, self.requests = metrics, 0.0, 0
        self._waiting: deque[_Waiter] = deque()

    def describe(self) -> str:
        return (f"admitting {self.budget:g} megapixels at once (about {self.budget * MB_PER_MEGAPIXEL:.0f} MB "
                f"beyond the model's), then up to {self.max_waiting} requests waiting {self.max_wait_s:g} s")

    @asynccontextmanager
    async def hold(self, megapixels: float) -> AsyncIterator[None]:
        """Hold ``megapixels`` of the budget for the body of the ``async with``."""
        if megapixels > self.budget:
            raise HTTPException(413, f"a {megapixels:.1f}-megapixel photo is over this server's budget of "
                                     f"{self.budget:g} megapixels in flight (serve.max_inflight_megapixels); "
                                     "send a smaller photo")
        await self._acquire(megapixels)
        try:
            yield
        finally:
            self._release(megapixels)

    def _busy(self, why: str) -> HTTPException:
        self.metrics.rejected.inc()
        return HTTPException(503, f"server busy: {why}; retry shortly", headers={"Retry-After": "1"})

    async def _acquire(self, megapixels: float) -> None:
        if not self._waiting and self.used + megapixels <= self.budget:
            self._take(megapixels)
            return
        if len(self._waiting) >= self.max_waiting:
            raise self._busy(f"{len(self._waiting)} requests already waiting (serve.max_waiting)")
        waiter = _Waiter(megapixels, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self._show()
        try:
            async with asyncio.timeout(self.max_wait_s):
                await asyncio.shield(waiter.granted)
        except BaseException as exc:  # timed out, or the client went away while waiting
            if waiter.granted.done():  # granted in the same instant: give it back
                self._release(megapixels)
            else:
                self._waiting.remove(waiter)
                self._grant()  # a large photo leaving the head may let smaller ones in
            self._show()
            if isinstance(exc, TimeoutError):
                raise self._busy(f"waited {self.max_wait_s:g} s for {megapixels:.1f} megapixels "
                                 f"of the {self.budget:g} in flight (serve.max_wait_s)") from None
            raise

    def _take(self, megapixels: float) -> None:
        self.used += megapixels
        self.requests += 1
        self._show()

    def _release(self, megapixels: float) -> None:
        self.used -= megapixels
        self.requests -= 1
        self._grant()
        self._show()

    def _grant(self) -> None:
        """Let waiters in from the head, in order, while they fit."""
        while self._waiting and self.used + self._waiting[0].megapixels <= self.budget:
            waiter = self._waiting.popleft()
            self._take(waiter.megapixels)
            waiter.granted.set_result(None)

    def _show(self) -> None:
        self.metrics.queue_depth.set(self.requests)
        self.metrics.inflight_megapixels.set(self.used)
        self.metrics.waiting.set(len(self._waiting))
