"""TokenBucket timing against a fake clock."""

from __future__ import annotations

import pytest

from kubemark.client.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_burst_then_paced_at_qps() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    bucket = TokenBucket(qps=10, burst=3, clock=clock, sleep=sleep)
    for _ in range(3):
        await bucket.acquire()
    assert slept == []  # the burst is free
    await bucket.acquire()
    await bucket.acquire()
    # Reservations queue up: the 4th waits one interval, the 5th two.
    assert slept == pytest.approx([0.1, 0.2])


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=2, burst=2, clock=clock)
    assert bucket.reserve() == 0 and bucket.reserve() == 0
    assert abs(bucket.reserve() - 0.5) < 1e-9
    clock.now += 100  # long idle: refill to burst only, not 200 tokens
    assert bucket.reserve() == 0 and bucket.reserve() == 0
    assert bucket.reserve() > 0


def test_try_accept_does_not_go_negative() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=1, burst=1, clock=clock)
    assert bucket.try_accept()
    assert not bucket.try_accept()
    clock.now += 0.5
    assert not bucket.try_accept()
    clock.now += 0.5
    assert bucket.try_accept()


async def test_non_positive_qps_is_unlimited() -> None:
    calls: list[float] = []

    async def sleep(d: float) -> None:
        calls.append(d)

    bucket = TokenBucket(qps=0, burst=1, sleep=sleep)
    for _ in range(1000):
        await bucket.acquire()
    assert calls == [] and bucket.unlimited
