"""Admission by megapixels in flight: who runs, who waits (in arrival order), who is refused."""
import asyncio

import pytest
from fastapi import HTTPException

from serving.admission import PixelAdmission
from serving.metrics import ServingMetrics


def admission(budget=10.0, max_waiting=8, max_wait_s=5.0) -> PixelAdmission:
    return PixelAdmission(budget, max_waiting, max_wait_s, ServingMetrics())


async def job(adm: PixelAdmission, name: str, mp: float, log: list, release: asyncio.Event) -> None:
    async with adm.hold(mp):
        log.append(name)
        await release.wait()


def test_requests_that_fit_run_together_and_the_rest_wait_in_arrival_order():
    async def scenario():
        adm, log, release = admission(10), [], asyncio.Event()
        tasks = []
        for name, mp in [("a", 4), ("b", 4), ("c", 4), ("d", 1), ("e", 2)]:
            tasks.append(asyncio.create_task(job(adm, name, mp, log, release)))
            await asyncio.sleep(0)  # arrival order
        await asyncio.sleep(0.01)
        running = list(log)
        # d (1 MP) would fit beside a and b, but c came first: nobody overtakes
        assert running == ["a", "b"] and adm.used == 8 and len(adm._waiting) == 3
        release.set()
        await asyncio.gather(*tasks)
        assert log == ["a", "b", "c", "d", "e"] and adm.used == 0 and adm.requests == 0

    asyncio.run(scenario())


def test_a_photo_over_the_whole_budget_is_refused_with_413_saying_why():
    async def scenario():
        with pytest.raises(HTTPException) as exc:
            async with admission(10).hold(12.5):
                pass
        assert exc.value.status_code == 413
        assert "12.5-megapixel" in exc.value.detail and "serve.max_inflight_megapixels" in exc.value.detail

    asyncio.run(scenario())


def test_a_full_waiting_queue_and_a_long_wait_answer_503_with_retry_after_and_free_their_place():
    async def scenario():
        adm, log, release = admission(10, max_waiting=1, max_wait_s=0.2), [], asyncio.Event()
        running = asyncio.create_task(job(adm, "big", 8, log, release))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(job(adm, "waits", 5, log, release))
        await asyncio.sleep(0)
        with pytest.raises(HTTPException) as full:
            async with adm.hold(1):
                pass
        assert full.value.status_code == 503 and "serve.max_waiting" in full.value.detail
        with pytest.raises(HTTPException) as late:
            await waiting
        assert late.value.status_code == 503 and late.value.headers["Retry-After"] == "1"
        assert "serve.max_wait_s" in late.value.detail and not adm._waiting
        async with adm.hold(2):  # the place it left is free again
            assert adm.used == 10
        release.set()
        await running
        assert adm.used == 0 and log == ["big"]

    asyncio.run(scenario())


def test_a_client_that_leaves_while_waiting_lets_the_next_one_in():
    async def scenario():
        adm, log, release = admission(10), [], asyncio.Event()
        first = asyncio.create_task(job(adm, "first", 6, log, release))
        await asyncio.sleep(0)
        gone = asyncio.create_task(job(adm, "gone", 9, log, release))  # heads the queue
        await asyncio.sleep(0)
        small = asyncio.create_task(job(adm, "small", 3, log, release))  # fits, but behind "gone"
        await asyncio.sleep(0.01)
        assert log == ["first"]
        gone.cancel()
        await asyncio.sleep(0.01)
        assert log == ["first", "small"] and adm.used == 9
        release.set()
        await asyncio.gather(first, small)
        assert adm.used == 0 and not adm._waiting

    asyncio.run(scenario())
