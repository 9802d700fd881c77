"""InflightLimiter: per-kind limits, exemptions and the last-second high-water mark gauge."""

from __future__ import annotations

from kubemark.master.apiserver.inflight import InflightLimiter
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.request_info import UserInfo, parse_request_info

GET = parse_request_info("GET", "/api/v1/namespaces/ns/pods/p")
PUT = parse_request_info("PUT", "/api/v1/nodes/n1")
WATCH = parse_request_info("GET", "/api/v1/pods", {"watch": "true"})
LOG = parse_request_info("GET", "/api/v1/namespaces/ns/pods/p/log")
ADMIN = UserInfo("admin", ("system:masters",))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limits_are_per_kind() -> None:
    limiter = InflightLimiter(max_read_only=2, max_mutating=1)
    assert limiter.try_acquire(GET) and limiter.try_acquire(GET)
    assert not limiter.try_acquire(GET)
    assert limiter.try_acquire(PUT)
    assert not limiter.try_acquire(PUT)
    limiter.release(GET)
    assert limiter.try_acquire(GET)
    assert (limiter.in_flight("readOnly"), limiter.in_flight("mutating")) == (2, 1)


def test_long_running_and_masters_are_exempt() -> None:
    limiter = InflightLimiter(max_read_only=1, max_mutating=1)
    assert limiter.try_acquire(GET)
    assert all(limiter.try_acquire(WATCH) for _ in range(5))
    assert limiter.try_acquire(LOG)
    assert limiter.in_flight("readOnly") == 1
    limiter.release(WATCH)
    assert limiter.in_flight("readOnly") == 1
    assert limiter.try_acquire(GET, ADMIN)  # over the limit, but a super-admin always gets an answer
    assert limiter.in_flight("readOnly") == 2
    assert not limiter.try_acquire(GET, UserInfo("bob"))


def test_zero_means_unlimited() -> None:
    limiter = InflightLimiter(max_read_only=0, max_mutating=0)
    assert all(limiter.try_acquire(PUT) for _ in range(1000))


def test_gauge_reports_last_second_high_water_mark() -> None:
    clock = FakeClock()
    metrics = APIServerMetrics(process_metrics=False)
    limiter = InflightLimiter(max_read_only=10, metrics=metrics, clock=clock)

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("apiserver_current_inflight_requests", {"request_kind": "readOnly"})

    for _ in range(3):
        limiter.try_acquire(GET)
    for _ in range(3):
        limiter.release(GET)
    assert gauge() == 3  # the peak of this second, not the current 0
    clock.now += 1.5
    limiter.try_acquire(GET)
    assert gauge() == 1  # a new window starts from the current count
