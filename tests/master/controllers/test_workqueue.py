"""Work queue semantics (coalescing, one worker per key, delays) and rate limiters on a fake clock."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from kubemark.master.controllers.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    QueueMetrics,
    WorkQueue,
    default_controller_rate_limiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_exponential_backoff_per_item_and_forget() -> None:
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    assert [rl.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert rl.when("b") == 0.005
    assert rl.num_requeues("a") == 4
    for _ in range(40):
        rl.when("a")
    assert rl.when("a") == 1000.0
    rl.forget("a")
    assert rl.when("a") == 0.005


def test_token_bucket_burst_then_qps() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(10, 100, clock)
    assert all(rl.when("x") == 0.0 for _ in range(100))
    assert abs(rl.when("x") - 0.1) < 1e-9
    assert abs(rl.when("x") - 0.2) < 1e-9
    clock.now += 10  # refills (capped at burst)
    assert rl.when("x") == 0.0


def test_default_limiter_is_max_of_both() -> None:
    clock = FakeClock()
    rl = default_controller_rate_limiter(clock)
    for _ in range(100):
        rl.when(str(_))  # drain the bucket with distinct items
    assert abs(rl.when("new") - 0.1) < 1e-9  # bucket dominates the 5 ms item backoff


async def test_add_coalesces_and_dirty_key_requeues_after_done() -> None:
    registry = CollectorRegistry()
    q = WorkQueue("t", metrics=QueueMetrics(registry))
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    key = await q.get()
    assert key == "a"
    q.add("a")  # while processing: marked dirty, not queued twice
    assert len(q) == 1
    assert await q.get() == "b"
    assert len(q) == 0
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    q.done("b")
    assert registry.get_sample_value("workqueue_adds_total", {"name": "t"}) == 3  # the coalesced add is not counted
    assert registry.get_sample_value("workqueue_depth", {"name": "t"}) == 0
    assert registry.get_sample_value("workqueue_work_duration_seconds_count", {"name": "t"}) == 3


async def test_one_key_never_on_two_workers() -> None:
    q = WorkQueue("t")
    running: set[str] = set()
    overlaps = 0
    processed = 0
    release = asyncio.Event()

    async def worker() -> None:
        nonlocal overlaps, processed
        while (key := await q.get()) is not None:
            if key in running:
                overlaps += 1
            running.add(key)
            await release.wait()
            running.discard(key)
            processed += 1
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    q.add("k")
    await asyncio.sleep(0)
    for _ in range(5):
        q.add("k")
        await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(_until(lambda: processed >= 2 and len(q) == 0 and not running), 2)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert overlaps == 0
    assert processed == 2  # the first run, then one coalesced re-run


async def test_add_after_keeps_earliest_and_shutdown_wakes_getters() -> None:
    q = WorkQueue("t")
    q.add_after("x", 30.0)
    q.add_after("x", 0.01)
    q.add_after("x", 60.0)
    assert q.waiting_keys() == ["x"]
    assert await asyncio.wait_for(q.get(), 2) == "x"
    q.done("x")
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("y", 100.0)
    q.shutdown()
    assert await asyncio.wait_for(getter, 2) is None
    assert q.waiting_keys() == []


async def test_add_rate_limited_counts_retries() -> None:
    registry = CollectorRegistry()
    q = WorkQueue("r", metrics=QueueMetrics(registry))
    q.add_rate_limited("z")
    assert q.num_requeues("z") == 1
    assert await asyncio.wait_for(q.get(), 2) == "z"
    q.forget("z")
    assert q.num_requeues("z") == 0
    assert registry.get_sample_value("workqueue_retries_total", {"name": "r"}) == 1


async def _until(check) -> None:
    while not check():
        await asyncio.sleep(0.001)
