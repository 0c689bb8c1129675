"""Dynamic batching across requests (as Triton does), oldest request first.

Requests hand over their tiles with a priority (their arrival time); one worker thread owns
the model, so an onnxruntime session never runs two batches at once. Each model call takes
up to ``max_batch`` tiles of one shape, the oldest request's first, and waits at most
``window_s`` for more to arrive. So the batches stay full while the first request to arrive
is the first to finish: a round-robin over requests would finish them all together, late.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

Item = tuple[float, int, np.ndarray, Future]  # (priority, sequence, tile, its output)


class TileBatcher:
    def __init__(self, run_batch: Callable[[np.ndarray], np.ndarray], max_batch: int, window_s: float) -> None:
        self.run_batch, self.max_batch, self.window_s = run_batch, max_batch, window_s
        self._pending: list[Item] = []  # a heap: lowest priority value (oldest request) first
        self._sequence = itertools.count()  # keeps a request's tiles in their order
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # model calls so far (for tests and metrics)
        self._thread = threading.Thread(target=self._work, name="tile-batcher", daemon=True)
        self._thread.start()

    def submit(self, tiles: np.ndarray, priority: float) -> Callable[[], np.ndarray]:
        """Queue ``tiles`` (lower ``priority`` first); the returned callable waits for their outputs."""
        with self._cond:
            if self._closed:  # a request that started on a retired model finishes inline
                out = self.run_batch(tiles)
                return lambda: out
            futures: list[Future] = [Future() for _ in range(len(tiles))]
            for tile, fut in zip(tiles, futures, strict=True):
                heapq.heappush(self._pending, (priority, next(self._sequence), tile, fut))
            self._cond.notify()
        return lambda: np.stack([f.result() for f in futures])

    def __call__(self, tiles: np.ndarray, priority: float | None = None) -> np.ndarray:
        """A ``tiling.BatchFn``: the outputs for ``tiles``, batched with other callers' tiles."""
        return self.submit(tiles, time.monotonic() if priority is None else priority)()

    def close(self) -> None:
        """Finish what is queued, then stop the worker (after a swap to a new model)."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _like_head(self) -> list[Item]:
        shape = self._pending[0][2].shape  # photos smaller than a tile make smaller tiles
        return [item for item in self._pending if item[2].shape == shape]

    def _next_batch(self) -> list[Item] | None:
        """Up to ``max_batch`` tiles shaped like the oldest one, oldest first; None once closed and drained."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            deadline = time.monotonic() + self.window_s
            while not self._closed and len(self._like_head()) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            batch = heapq.nsmallest(self.max_batch, self._like_head())
            taken = {id(item) for item in batch}
            self._pending = [item for item in self._pending if id(item) not in taken]
            heapq.heapify(self._pending)
            return batch

    def _run(self, batch: list[Item]) -> None:
        try:
            out = self.run_batch(np.stack([tile for _, _, tile, _ in batch]))
            for (_, _, _, fut), pred in zip(batch, out, strict=True):
                fut.set_result(pred)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error; the worker lives on
            for *_, fut in batch:
                fut.set_exception(exc)
        self.batches += 1

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._run(batch)


class Prioritised:
    """The batcher as one request's ``tiling.Submitter``: all its tiles carry its arrival time."""

    def __init__(self, batcher: TileBatcher, priority: float) -> None:
        self.batcher, self.priority = batcher, priority

    def submit(self, tiles: np.ndarray) -> Callable[[], np.ndarray]:
        return self.batcher.submit(tiles, self.priority)

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        return self.submit(tiles)()
