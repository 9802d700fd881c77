"""Tuning sets: when each of a phase's actions starts (clusterloader2 semantics).

Every set starts its actions as tasks at computed *absolute* deadlines (start + offset), so a late wake-up delays
one action but never the schedule: the achieved rate stays on target however long each sleep overshoots. As in
clusterloader2, the sets that sleep after starting an action (qpsLoad, randomizedLoad, steppedLoad after a full
burst, timeLimitedLoad) also sleep after the last one: a phase of n actions at qps q lasts at least n/q, which is
when the next step starts. The clock
and sleep are injected so tests can run schedules on a fake clock. `execute` returns once every action finished;
failures are raised together as an ExceptionGroup after all actions ran.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

from kubemark.load.config import TuningSetConfig

__all__ = [
    "Action",
    "GlobalQPSLoad",
    "ParallelismLimitedLoad",
    "PoissonLoad",
    "QPSLoad",
    "RandomizedLoad",
    "RandomizedTimeLimitedLoad",
    "SteppedLoad",
    "TimeLimitedLoad",
    "Timing",
    "TuningSet",
    "TuningSetFactory",
]

log = logging.getLogger(__name__)

Action = Callable[[], Awaitable[None]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Timing:
    """The clock (monotonic seconds) and sleep a tuning set schedules with."""

    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.clock()
        if delay > 0:
            await self.sleep(delay)


async def _finish(tasks: list[asyncio.Task[None]], total: int) -> None:
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for err in errors:
        if not isinstance(err, Exception):  # cancellation and the like must propagate unchanged
            raise err
    if errors:
        raise ExceptionGroup(f"{len(errors)} of {total} actions failed", errors)  # type: ignore[type-var]


class TuningSet:
    """Base: subclasses define `offsets(n)` (seconds after start for each action), and `schedule(n)` when the set
    waits on after its last start, or override `execute`."""

    def __init__(self, timing: Timing) -> None:
        self._timing = timing

    def offsets(self, n: int) -> Iterator[float]:
        raise NotImplementedError

    def schedule(self, n: int) -> tuple[list[float], float]:
        """The start offsets of n actions and the offset before which `execute` does not return."""
        offsets = list(self.offsets(n))
        return offsets, (offsets[-1] if offsets else 0.0)

    async def execute(self, actions: Sequence[Action]) -> None:
        timing = self._timing
        offsets, end = self.schedule(len(actions))
        start = timing.clock()
        tasks: list[asyncio.Task[None]] = []
        try:
            for action, offset in zip(actions, offsets, strict=True):
                await timing.sleep_until(start + offset)
                tasks.append(asyncio.ensure_future(action()))
            await timing.sleep_until(start + end)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        await _finish(tasks, len(actions))


class QPSLoad(TuningSet):
    """qpsLoad{qps}: action i starts at i/qps."""

    def __init__(self, timing: Timing, qps: float) -> None:
        super().__init__(timing)
        self.qps = qps

    def offsets(self, n: int) -> Iterator[float]:
        return (i / self.qps for i in range(n))

    def schedule(self, n: int) -> tuple[list[float], float]:
        return list(self.offsets(n)), n / self.qps  # clusterloader2 sleeps 1/qps after every start


class RandomizedLoad(TuningSet):
    """randomizedLoad{averageQps}: gaps between starts uniform in [0, 2/averageQps)."""

    def __init__(self, timing: Timing, average_qps: float, rng: random.Random) -> None:
        super().__init__(timing)
        self.average_qps = average_qps
        self._rng = rng

    def offsets(self, n: int) -> Iterator[float]:
        return iter(self.schedule(n)[0])

    def schedule(self, n: int) -> tuple[list[float], float]:
        offsets, at = [], 0.0
        for _ in range(n):  # a random sleep after every start, the last one included
            offsets.append(at)
            at += self._rng.random() * 2.0 / self.average_qps
        return offsets, at


class SteppedLoad(TuningSet):
    """steppedLoad{burstSize, stepDelay}: bursts of burstSize actions, stepDelay apart."""

    def __init__(self, timing: Timing, burst_size: int, step_delay: float) -> None:
        super().__init__(timing)
        self.burst_size = burst_size
        self.step_delay = step_delay

    def offsets(self, n: int) -> Iterator[float]:
        return ((i // self.burst_size) * self.step_delay for i in range(n))

    def schedule(self, n: int) -> tuple[list[float], float]:
        return list(self.offsets(n)), (n // self.burst_size) * self.step_delay  # a sleep after every full burst


class TimeLimitedLoad(TuningSet):
    """timeLimitedLoad{timeLimit}: actions evenly spread, action i at i*timeLimit/n."""

    def __init__(self, timing: Timing, time_limit: float) -> None:
        super().__init__(timing)
        self.time_limit = time_limit

    def offsets(self, n: int) -> Iterator[float]:
        return (i * self.time_limit / n for i in range(n))

    def schedule(self, n: int) -> tuple[list[float], float]:
        return list(self.offsets(n)), (self.time_limit if n else 0.0)  # timeLimit/n after every start


class RandomizedTimeLimitedLoad(TuningSet):
    """randomizedTimeLimitedLoad{timeLimit}: each action at an independent uniform time in [0, timeLimit)."""

    def __init__(self, timing: Timing, time_limit: float, rng: random.Random) -> None:
        super().__init__(timing)
        self.time_limit = time_limit
        self._rng = rng

    async def execute(self, actions: Sequence[Action]) -> None:
        # Sorted offsets keep one sleeper at a time; which action gets which offset is still random.
        offsets = [self._rng.random() * self.time_limit for _ in actions]
        order = sorted(range(len(actions)), key=offsets.__getitem__)
        await _Scheduled(self._timing, [offsets[i] for i in order]).execute([actions[i] for i in order])


class _Scheduled(TuningSet):
    """Fixed, precomputed offsets."""

    def __init__(self, timing: Timing, offsets: Sequence[float]) -> None:
        super().__init__(timing)
        self._offsets = offsets

    def offsets(self, n: int) -> Iterator[float]:
        return iter(self._offsets)


class PoissonLoad(TuningSet):
    """poissonLoad{expectedActionsPerSecond}: exponential gaps with mean 1/rate (a Poisson arrival process)."""

    def __init__(self, timing: Timing, rate: float, rng: random.Random) -> None:
        super().__init__(timing)
        self.rate = rate
        self._rng = rng

    def offsets(self, n: int) -> Iterator[float]:
        at = 0.0
        for _ in range(n):
            yield at
            at += self._rng.expovariate(self.rate)


class ParallelismLimitedLoad(TuningSet):
    """parallelismLimitedLoad{parallelismLimit}: as fast as possible, at most N actions in flight."""

    def __init__(self, timing: Timing, parallelism_limit: int) -> None:
        super().__init__(timing)
        self.parallelism_limit = parallelism_limit

    async def execute(self, actions: Sequence[Action]) -> None:
        sem = asyncio.Semaphore(self.parallelism_limit)

        async def limited(action: Action) -> None:
            try:
                await action()
            finally:
                sem.release()

        tasks: list[asyncio.Task[None]] = []
        try:
            for action in actions:
                await sem.acquire()
                tasks.append(asyncio.ensure_future(limited(action)))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        await _finish(tasks, len(actions))


@dataclass
class _GCRA:
    """A token bucket as a theoretical arrival time: reservations are computed synchronously, so concurrent
    phases sharing it interleave fairly and the long-run rate is exact."""

    qps: float
    burst: int
    tat: float | None = field(default=None)

    def reserve(self, now: float) -> float:
        interval = 1.0 / self.qps
        tat = now if self.tat is None else max(self.tat, now)
        allowed_at = tat - (self.burst - 1) * interval
        start = max(now, allowed_at)
        self.tat = tat + interval
        return start


class GlobalQPSLoad(TuningSet):
    """globalQPSLoad{qps, burst}: one token bucket shared by every phase that names this tuning set."""

    def __init__(self, timing: Timing, qps: float, burst: int) -> None:
        super().__init__(timing)
        self._bucket = _GCRA(qps, burst)

    async def execute(self, actions: Sequence[Action]) -> None:
        timing = self._timing
        tasks: list[asyncio.Task[None]] = []
        try:
            for action in actions:
                await timing.sleep_until(self._bucket.reserve(timing.clock()))
                tasks.append(asyncio.ensure_future(action()))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        await _finish(tasks, len(actions))


class TuningSetFactory:
    """Builds tuning sets by name from a config's `tuningSets`; globalQPSLoad instances are shared per name."""

    def __init__(
        self,
        configs: Sequence[TuningSetConfig],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._configs = {c.name: c for c in configs}
        self._timing = Timing(clock, sleep)
        self._rng = rng or random.Random()
        self._shared: dict[str, TuningSet] = {}

    def get(self, name: str) -> TuningSet:
        try:
            cfg = self._configs[name]
        except KeyError:
            raise KeyError(f'unknown tuning set "{name}" (defined: {", ".join(self._configs) or "none"})') from None
        if name in self._shared:
            return self._shared[name]
        t = self._timing
        if cfg.qps_load is not None:
            return QPSLoad(t, cfg.qps_load.qps)
        if cfg.randomized_load is not None:
            return RandomizedLoad(t, cfg.randomized_load.average_qps, self._rng)
        if cfg.stepped_load is not None:
            return SteppedLoad(t, cfg.stepped_load.burst_size, cfg.stepped_load.step_delay)
        if cfg.time_limited_load is not None:
            return TimeLimitedLoad(t, cfg.time_limited_load.time_limit)
        if cfg.randomized_time_limited_load is not None:
            return RandomizedTimeLimitedLoad(t, cfg.randomized_time_limited_load.time_limit, self._rng)
        if cfg.parallelism_limited_load is not None:
            return ParallelismLimitedLoad(t, cfg.parallelism_limited_load.parallelism_limit)
        if cfg.poisson_load is not None:
            return PoissonLoad(t, cfg.poisson_load.expected_actions_per_second, self._rng)
        if cfg.global_qps_load is not None:
            shared = GlobalQPSLoad(t, cfg.global_qps_load.qps, cfg.global_qps_load.burst)
            self._shared[name] = shared
            return shared
        raise AssertionError(f"tuning set {name} has no load type")  # the config validator forbids this
