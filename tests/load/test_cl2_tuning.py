"""Tuning sets as clusterloader2 times them, on a virtual clock: start offsets and when `execute` returns (the
sets that sleep after every start also sleep after the last one), keys matched ignoring case, initialDelay."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from kubemark.load.config import TuningSetConfig
from kubemark.load.tuning import TuningSetFactory


class VirtualClock:
    """Sleepers wake in deadline order; time jumps only when every task waits on the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + delay, next(self._seq), fut))
        await fut

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(coro)
        while not task.done():
            for _ in range(20):
                await asyncio.sleep(0)
            if task.done():
                break
            assert self._waiters, "blocked on something other than the clock"
            deadline, _, fut = heapq.heappop(self._waiters)
            self.now = max(self.now, deadline)
            fut.set_result(None)
        return task.result()


async def timed(config: dict[str, Any], n: int, *, seed: int = 3) -> tuple[list[float], float]:
    """Start offsets of n instant actions and the time `execute` returned."""
    clock = VirtualClock()
    factory = TuningSetFactory(
        [TuningSetConfig.model_validate({"name": "t", **config})],
        clock=clock.time,
        sleep=clock.sleep,
        rng=random.Random(seed),
    )
    starts: list[float] = []

    async def action() -> None:
        starts.append(clock.now)

    await clock.run(factory.get("t").execute([action for _ in range(n)]))
    return starts, clock.now


async def test_qps_load_sleeps_after_the_last_start_too() -> None:
    starts, end = await timed({"qpsLoad": {"qps": 4}}, 6)
    assert starts == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25])
    assert end == pytest.approx(1.5)  # 6 sleeps of 1/qps, as clusterloader2's loop


async def test_randomized_load_waits_a_random_gap_after_every_start() -> None:
    starts, end = await timed({"randomizedLoad": {"averageQps": 2}}, 50)
    gaps = [b - a for a, b in itertools.pairwise([*starts, end])]
    assert len(gaps) == 50 and all(0 <= g < 1.0 for g in gaps)  # uniform in [0, 2/averageQps)
    assert end > starts[-1]


async def test_stepped_load_sleeps_after_every_full_burst() -> None:
    starts, end = await timed({"steppedLoad": {"burstSize": 3, "stepDelay": "10s"}}, 7)
    assert starts == [0, 0, 0, 10, 10, 10, 20]
    assert end == 20  # two full bursts -> two sleeps; the last partial burst has none
    _, end = await timed({"steppedLoad": {"burstSize": 3, "stepDelay": "10s"}}, 6)
    assert end == 20  # the second burst is full: clusterloader2 sleeps after it


async def test_time_limited_load_takes_the_whole_limit() -> None:
    starts, end = await timed({"timeLimitedLoad": {"timeLimit": "1m"}}, 4)
    assert starts == pytest.approx([0, 15, 30, 45])
    assert end == pytest.approx(60)


async def test_randomized_time_limited_load_returns_after_the_last_action() -> None:
    starts, end = await timed({"RandomizedTimeLimitedLoad": {"timeLimit": "10s"}}, 30)
    assert all(0 <= s < 10 for s in starts) and len(starts) == 30
    assert end == max(starts)


async def test_poisson_and_global_qps_do_not_wait_after_the_last_start() -> None:
    starts, end = await timed({"poissonLoad": {"expectedActionsPerSecond": 5}}, 20)
    assert end == starts[-1]
    starts, end = await timed({"globalQPSLoad": {"qps": 2, "burst": 2}}, 5)
    assert starts == pytest.approx([0, 0, 0.5, 1.0, 1.5])  # a full bucket of 2, then 1/qps
    assert end == starts[-1]


async def test_parallelism_limited_load_runs_n_at_a_time() -> None:
    clock = VirtualClock()
    factory = TuningSetFactory(
        [TuningSetConfig.model_validate({"name": "p", "parallelismLimitedLoad": {"parallelismLimit": 2}})],
        clock=clock.time,
        sleep=clock.sleep,
    )
    starts: list[float] = []

    async def action() -> None:
        starts.append(clock.now)
        await clock.sleep(1.0)

    await clock.run(factory.get("p").execute([action for _ in range(5)]))
    assert starts == [0, 0, 1, 1, 2]
    assert clock.now == 3


def test_keys_match_ignoring_case_and_initial_delay_is_accepted() -> None:
    ts = TuningSetConfig.model_validate(
        {"Name": "x", "initialDelay": "5s", "RandomizedTimeLimitedLoad": {"TimeLimit": "30s"}}
    )
    assert ts.kind == "randomizedTimeLimitedLoad"
    assert ts.initial_delay == 5.0  # in clusterloader2's schema; its tuning sets ignore it, and so do ours
    assert ts.params.time_limit == 30.0  # type: ignore[attr-defined]
    ts = TuningSetConfig.model_validate({"name": "g", "GlobalQPSLoad": {"qps": 3, "burst": 1}})
    assert ts.kind == "globalQPSLoad"
