"""The cross-request batcher: full batches, oldest request first."""
import threading

import numpy as np

from serving.batcher import Prioritised, TileBatcher


def tiles(tag: float, n: int, side: int = 4) -> np.ndarray:
    return np.full((n, 3, side, side), tag, np.float32)


def test_batches_take_the_oldest_requests_tiles_first_and_stay_full():
    seen, busy, gate = [], threading.Event(), threading.Event()

    def run(batch):
        busy.set()
        gate.wait()  # hold the model until every request has queued
        seen.append(sorted({float(t[0, 0, 0]) for t in batch}))
        return batch + 1

    batcher = TileBatcher(run, max_batch=4, window_s=0.0)
    try:
        blocker = batcher.submit(tiles(9, 1), priority=0.0)
        busy.wait(5)  # the worker holds this one
        later = batcher.submit(tiles(3, 6), priority=3.0)  # arrived third
        first = batcher.submit(tiles(1, 6), priority=1.0)  # arrived first, queued after
        second = batcher.submit(tiles(2, 2), priority=2.0)
        gate.set()
        np.testing.assert_array_equal(first(), tiles(2, 6))
        second(), later(), blocker()
    finally:
        batcher.close()
    # after the blocker: the oldest request's tiles, then the next oldest fills the batch
    assert seen == [[9.0], [1.0], [1.0, 2.0], [3.0], [3.0]]
    assert batcher.batches == 5


def test_tiles_of_another_shape_wait_for_a_batch_of_their_own():
    shapes = []
    batcher = TileBatcher(lambda b: (shapes.append(b.shape), b)[1], max_batch=8, window_s=0.05)
    try:
        small = batcher.submit(tiles(1, 2, side=2), priority=1.0)
        big = batcher.submit(tiles(2, 3, side=4), priority=2.0)
        assert small().shape == (2, 3, 2, 2) and big().shape == (3, 3, 4, 4)
    finally:
        batcher.close()
    assert sorted(s[2] for s in shapes) == [2, 4]  # never mixed in one call


def test_a_closed_batcher_runs_late_requests_inline_and_errors_reach_every_waiter():
    def fail(batch):
        raise RuntimeError("model failed")

    batcher = TileBatcher(fail, max_batch=4, window_s=0.0)
    result = Prioritised(batcher, 1.0).submit(tiles(1, 3))
    try:
        result()
    except RuntimeError as exc:
        assert "model failed" in str(exc)
    else:
        raise AssertionError("the model's error did not reach the request")
    batcher.close()
    batcher.run_batch = lambda b: b * 2
    np.testing.assert_array_equal(Prioritised(batcher, 2.0)(tiles(1, 2)), tiles(2, 2))
