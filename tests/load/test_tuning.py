"""Tuning-set schedules on a fake clock: exact start times, absolute deadlines, shared global QPS."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from kubemark.load.config import TuningSetConfig
from kubemark.load.tuning import QPSLoad, Timing, TuningSetFactory


class FakeClock:
    """Virtual time: sleepers wake in deadline order; time jumps when every task is blocked on the clock."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 1000.0
        self.overshoot = overshoot  # every sleep wakes this late, like a busy event loop
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + delay + self.overshoot, next(self._seq), fut))
        await fut

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(coro)
        idle = 0
        while not task.done():
            for _ in range(20):  # let every runnable task reach its next clock wait
                await asyncio.sleep(0)
            if task.done():
                break
            if not self._waiters:
                idle += 1
                assert idle < 100, "tasks are blocked on something other than the clock"
                continue
            idle = 0
            deadline, _, fut = heapq.heappop(self._waiters)
            self.now = max(self.now, deadline)
            fut.set_result(None)
        return task.result()


def factory(clock: FakeClock, *configs: dict[str, Any], seed: int = 7) -> TuningSetFactory:
    return TuningSetFactory(
        [TuningSetConfig.model_validate(c) for c in configs],
        clock=clock.time,
        sleep=clock.sleep,
        rng=random.Random(seed),
    )


def recorder(clock: FakeClock, starts: list[float], duration: float = 0.0) -> Callable[[], Awaitable[None]]:
    async def action() -> None:
        starts.append(clock.now - 1000.0)
        if duration:
            await clock.sleep(duration)

    return action


async def run_set(clock: FakeClock, f: TuningSetFactory, name: str, n: int, duration: float = 0.0) -> list[float]:
    starts: list[float] = []
    await clock.run(f.get(name).execute([recorder(clock, starts, duration) for _ in range(n)]))
    return starts


async def test_qps_load_starts_every_1_over_qps() -> None:
    clock = FakeClock()
    starts = await run_set(clock, factory(clock, {"name": "q", "qpsLoad": {"qps": 10}}), "q", 5)
    assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


async def test_qps_load_uses_absolute_deadlines_despite_oversleeping() -> None:
    # Every sleep wakes 30 ms late; with accumulated sleeps 100 actions would take 99*0.13 s instead of 9.9 s.
    clock = FakeClock(overshoot=0.03)
    starts = await run_set(clock, factory(clock, {"name": "q", "qpsLoad": {"qps": 10}}), "q", 100)
    for i, s in enumerate(starts):
        assert i / 10 <= s <= i / 10 + 0.03 + 1e-9
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate == pytest.approx(10, rel=0.02)


async def test_randomized_load_gaps_are_uniform_below_2_over_avg() -> None:
    clock = FakeClock()
    starts = await run_set(clock, factory(clock, {"name": "r", "randomizedLoad": {"averageQps": 4}}, seed=3), "r", 400)
    rng = random.Random(3)
    expected = list(itertools.accumulate((rng.random() * 0.5 for _ in range(399)), initial=0.0))
    assert starts == pytest.approx(expected)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0 <= g < 0.5 for g in gaps)
    assert (len(starts) - 1) / starts[-1] == pytest.approx(4, rel=0.1)


async def test_stepped_load_bursts() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "s", "steppedLoad": {"burstSize": 3, "stepDelay": "2s"}})
    assert await run_set(clock, f, "s", 7) == pytest.approx([0, 0, 0, 2, 2, 2, 4])


async def test_time_limited_load_spreads_evenly() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "t", "timeLimitedLoad": {"timeLimit": "10s"}})
    assert await run_set(clock, f, "t", 4) == pytest.approx([0, 2.5, 5, 7.5])


async def test_randomized_time_limited_load_within_limit() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "t", "randomizedTimeLimitedLoad": {"timeLimit": "10s"}}, seed=5)
    starts = await run_set(clock, f, "t", 50)
    rng = random.Random(5)
    assert starts == pytest.approx(sorted(rng.random() * 10 for _ in range(50)))
    assert all(0 <= s < 10 for s in starts)


async def test_parallelism_limited_load_caps_in_flight_actions() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "p", "parallelismLimitedLoad": {"parallelismLimit": 2}})
    in_flight = 0
    peak = 0
    starts: list[float] = []

    def make() -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            nonlocal in_flight, peak
            starts.append(clock.now - 1000.0)
            in_flight += 1
            peak = max(peak, in_flight)
            await clock.sleep(1.0)
            in_flight -= 1

        return action

    await clock.run(f.get("p").execute([make() for _ in range(5)]))
    assert peak == 2
    assert starts == pytest.approx([0, 0, 1, 1, 2])
    assert clock.now - 1000.0 == pytest.approx(3)


async def test_global_qps_load_is_shared_between_phases() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "g", "globalQPSLoad": {"qps": 2, "burst": 2}})
    assert f.get("g") is f.get("g")
    a: list[float] = []
    b: list[float] = []

    async def both() -> None:
        await asyncio.gather(
            f.get("g").execute([recorder(clock, a) for _ in range(3)]),
            f.get("g").execute([recorder(clock, b) for _ in range(3)]),
        )

    await clock.run(both())
    # One bucket for both phases: a burst of 2, then one start every 0.5 s across all six actions.
    assert sorted(a + b) == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


async def test_poisson_load_exponential_gaps() -> None:
    clock = FakeClock()
    f = factory(clock, {"name": "p", "poissonLoad": {"expectedActionsPerSecond": 20}}, seed=11)
    starts = await run_set(clock, f, "p", 2000)
    rng = random.Random(11)
    assert starts == pytest.approx(list(itertools.accumulate((rng.expovariate(20) for _ in range(1999)), initial=0.0)))
    assert (len(starts) - 1) / starts[-1] == pytest.approx(20, rel=0.06)


async def test_failures_are_collected_after_all_actions_ran() -> None:
    clock = FakeClock()
    ran: list[int] = []

    def make(i: int) -> Callable[[], Awaitable[None]]:
        async def action() -> None:
            ran.append(i)
            if i % 2:
                raise RuntimeError(f"boom {i}")

        return action

    with pytest.raises(ExceptionGroup) as info:
        await clock.run(QPSLoad(Timing(clock.time, clock.sleep), 100).execute([make(i) for i in range(5)]))
    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert "2 of 5 actions failed" in str(info.value)
    assert sorted(str(e) for e in info.value.exceptions) == ["boom 1", "boom 3"]


def test_unknown_tuning_set_names_the_defined_ones() -> None:
    f = TuningSetFactory([TuningSetConfig.model_validate({"name": "a", "qpsLoad": {"qps": 1}})])
    with pytest.raises(KeyError, match='unknown tuning set "b" \\(defined: a\\)'):
        f.get("b")


async def test_real_clock_rate_close_to_target() -> None:
    # A short real-time run (0.5 s). Loose bound: the machine is shared; benchmarks/tuning_rate.py measures it.
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def action() -> None:
        starts.append(loop.time())

    await QPSLoad(Timing(loop.time, asyncio.sleep), 200).execute([action for _ in range(101)])
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate == pytest.approx(200, rel=0.05)
    assert all(s - starts[0] >= i / 200 - 1e-3 for i, s in enumerate(starts))  # never ahead of schedule
