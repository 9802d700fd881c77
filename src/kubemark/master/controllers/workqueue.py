"""A client-go-like rate-limited work queue keyed by object key.

Semantics (k8s.io/client-go/util/workqueue):
- `add(key)` while the key waits in the queue is a no-op (coalescing); while a worker processes it, the key is
  marked dirty and re-queued when that worker calls `done(key)`, so one key never runs on two workers at once.
- `add_after(key, delay)` keeps only the earliest pending deadline per key.
- `add_rate_limited(key)` waits as long as the rate limiter says: per-item exponential backoff (5 ms doubling up
  to 1000 s) and an overall token bucket (10 qps, burst 100), whichever is longer; `forget(key)` resets the
  item's backoff.
- `get()` returns None once the queue is shut down and drained of waiting workers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Clock = Callable[[], float]

_DURATION_BUCKETS = tuple(1e-8 * 10**i for i in range(10))  # client-go: ExponentialBuckets(10e-9, 10, 10)


class RateLimiter(Protocol):
    def when(self, key: str) -> float: ...

    def forget(self, key: str) -> None: ...

    def num_requeues(self, key: str) -> int: ...


class ItemExponentialFailureRateLimiter:
    """base * 2**failures per key, capped at `cap` seconds."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        exp = self._failures.get(key, 0)
        self._failures[key] = exp + 1
        if exp > 64:  # 2**64 * base overflows any sensible cap
            return self.cap
        return min(self.base * (2**exp), self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """An overall token bucket: each `when` reserves a token and returns the wait until it is due."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = time.monotonic) -> None:
        self.qps = qps
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: str) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: str) -> None:
        return None

    def num_requeues(self, key: str) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait of several limiters (client-go's MaxOfRateLimiter)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: str) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: str) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = time.monotonic) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: 5 ms..1000 s per item, 10 qps / 100 burst overall."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock))


class QueueMetrics:
    """The workqueue_* metric families on one registry; each queue uses its `name` label."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=registry)
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"], registry=registry)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            ["name"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "workqueue_retries", "Total number of retries handled by workqueue", ["name"], registry=registry
        )


class WorkQueue:
    """See the module docstring. Single event loop; not thread-safe (nothing here needs threads)."""

    def __init__(
        self,
        name: str,
        *,
        rate_limiter: RateLimiter | None = None,
        metrics: QueueMetrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter(clock)
        self._clock = clock
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._added_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}
        self._waiting: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._m = metrics
        if metrics is not None:
            self._depth = metrics.depth.labels(name)
            self._adds = metrics.adds.labels(name)
            self._queue_duration = metrics.queue_duration.labels(name)
            self._work_duration = metrics.work_duration.labels(name)
            self._retries = metrics.retries.labels(name)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def is_processing(self, key: str) -> bool:
        return key in self._processing

    def waiting_keys(self) -> list[str]:
        """Keys scheduled by add_after / add_rate_limited that are not yet queued."""
        return list(self._waiting)

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        if self._m is not None:
            self._adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._push(key)

    def _push(self, key: str) -> None:
        self._queue.append(key)
        self._added_at.setdefault(key, self._clock())
        if self._m is not None:
            self._depth.inc()
        self._notify()

    def _notify(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def add_after(self, key: str, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current[0] <= ready_at:
                return  # an earlier deadline already pending
            current[1].cancel()
        handle = loop.call_at(ready_at, self._fire, key)
        self._waiting[key] = (ready_at, handle)

    def _fire(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        if self._m is not None:
            self._retries.inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self.rate_limiter.num_requeues(key)

    async def get(self) -> str | None:
        """The next key to process (mark it done() afterwards), or None when shutting down."""
        while not self._queue and not self._shutting_down:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if self._queue:
                    self._notify()  # pass a wake-up we may have consumed on to another worker
                raise
            finally:
                if not getter.done():
                    getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
        if not self._queue:
            return None
        key = self._queue.popleft()
        now = self._clock()
        if self._m is not None:
            self._depth.dec()
            added = self._added_at.get(key)
            if added is not None:
                self._queue_duration.observe(now - added)
        self._added_at.pop(key, None)
        self._started_at[key] = now
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if self._m is not None and started is not None:
            self._work_duration.observe(self._clock() - started)
        if key in self._dirty:
            self._push(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        getters, self._getters = self._getters, deque()
        for getter in getters:
            if not getter.done():
                getter.set_result(None)
