"""Dynamic batching across requests (as Triton does): tiles from concurrent requests wait up
to ``window_s`` to fill a batch of ``max_batch``, then run together in one model call.

Requests hand over all their tiles at once and block until theirs are done; one worker
thread owns the model, so an onnxruntime session never runs two batches at once.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class TileBatcher:
    def __init__(self, run_batch: Callable[[np.ndarray], np.ndarray], max_batch: int, window_s: float) -> None:
        self.run_batch, self.max_batch, self.window_s = run_batch, max_batch, window_s
        self._queue: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self.batches = 0  # model calls so far (for tests and metrics)
        self._closed, self._stopping, self._lock = False, False, threading.Lock()
        self._thread = threading.Thread(target=self._work, name="tile-batcher", daemon=True)
        self._thread.start()

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        """A ``tiling.BatchFn``: the outputs for ``tiles``, batched with other callers' tiles."""
        with self._lock:  # all of a call's tiles go in before a close() can
            if self._closed:  # a request that started on a retired model finishes inline
                return self.run_batch(tiles)
            futures = [Future() for _ in range(len(tiles))]
            for tile, fut in zip(tiles, futures):
                self._queue.put((tile, fut))
        return np.stack([f.result() for f in futures])

    def close(self) -> None:
        """Finish what is queued, then stop the worker (after a swap to a new model)."""
        with self._lock:
            self._closed = True
            self._queue.put(None)

    def _fill(self, pending: list) -> tuple[list, list]:
        """A batch of same-shape tiles (photos smaller than a tile make smaller tiles): from
        ``pending`` first, then whatever arrives within the window. Returns (batch, rest)."""
        shape = pending[0][0].shape
        group = [p for p in pending if p[0].shape == shape][: self.max_batch]
        rest = [p for p in pending if not any(p is g for g in group)]
        deadline = time.monotonic() + self.window_s
        while len(group) < self.max_batch and not self._stopping:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._stopping = True
            elif item[0].shape == shape:
                group.append(item)
            else:
                rest.append(item)
        return group, rest

    def _run(self, group: list) -> None:
        try:
            out = self.run_batch(np.stack([tile for tile, _ in group]))
            for (_, fut), pred in zip(group, out):
                fut.set_result(pred)
        except Exception as exc:  # every waiting request gets the error; the worker lives on
            for _, fut in group:
                fut.set_exception(exc)
        self.batches += 1

    def _work(self) -> None:
        pending: list = []
        while pending or not self._stopping:
            if not pending:
                item = self._queue.get()
                if item is None:
                    self._stopping = True
                    continue
                pending.append(item)
            group, pending = self._fill(pending)
            self._run(group)
