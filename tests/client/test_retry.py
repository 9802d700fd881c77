"""Backoff bounds and the retry table."""

from __future__ import annotations

import random

import pytest

from kubemark.client.retry import Backoff, is_retryable


def test_backoff_grows_within_jitter_bounds_and_caps() -> None:
    b = Backoff(initial=0.2, factor=2.0, jitter=0.2, cap=3.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(8)]
    for n, d in enumerate(delays):
        base = min(3.0, 0.2 * 2**n)
        assert base <= d <= base * 1.2, (n, d)
    assert max(delays) <= 3.6
    b.reset()
    assert 0.2 <= b.next_delay() <= 0.24


def test_backoff_is_reproducible_with_a_seed() -> None:
    a = [Backoff(rng=random.Random(1)).next_delay() for _ in range(1)]
    b = [Backoff(rng=random.Random(1)).next_delay() for _ in range(1)]
    assert a == b


def test_backoff_survives_huge_attempt_counts() -> None:
    b = Backoff(initial=1, factor=10, jitter=0, cap=5)
    for _ in range(2000):
        d = b.next_delay()
    assert d == 5


@pytest.mark.parametrize(
    ("status", "method", "sent", "expected"),
    [
        (None, "GET", True, True),
        (None, "PUT", True, True),
        (None, "POST", True, False),
        (None, "POST", False, True),
        (None, "PATCH", True, False),
        (429, "POST", True, True),
        (429, "PATCH", True, True),
        (503, "GET", True, True),
        (500, "DELETE", True, True),
        (504, "HEAD", True, True),
        (503, "POST", True, False),
        (502, "PATCH", True, False),
        (404, "GET", True, False),
        (409, "PUT", True, False),
        (501, "GET", True, False),
    ],
)
def test_is_retryable(status: int | None, method: str, sent: bool, expected: bool) -> None:
    assert is_retryable(status, method, request_sent=sent) is expected
