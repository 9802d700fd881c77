"""Client-side token bucket rate limiter with client-go's flowcontrol semantics.

The bucket holds up to `burst` tokens and refills at `qps` per second. `acquire()` reserves a token
immediately (the balance may go negative) and sleeps until that reservation is due, so concurrent callers
are served in arrival order without a lock, like golang.org/x/time/rate's Wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """`qps <= 0` means unlimited (client-go: a negative QPS disables the limiter)."""

    __slots__ = ("_burst", "_clock", "_last", "_qps", "_sleep", "_tokens")

    def __init__(self, qps: float, burst: int, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._qps = float(qps)
        # A burst below one could never admit a request.
        self._burst = float(max(1, burst))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._burst
        self._last = clock()

    @property
    def unlimited(self) -> bool:
        return self._qps <= 0

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            self._tokens = min(self._burst, self._tokens + elapsed * self._qps)

    def reserve(self) -> float:
        """Take one token now; return how many seconds the caller must wait before using it."""
        if self.unlimited:
            return 0.0
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def try_accept(self) -> bool:
        """Take a token only if one is available right now (client-go TryAccept)."""
        if self.unlimited:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
