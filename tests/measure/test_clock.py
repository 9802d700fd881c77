"""Clock-skew bounds from 1-second-precision server stamps, and the probe against a fake API server."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubemark import codec
from kubemark.client.kubeconfig import ClusterCredentials
from kubemark.client.rest import RestClient
from kubemark.kube.meta import parse_rfc3339
from kubemark.measure.clock import SkewSample, assess_skew, parse_http_date, probe_clock_skew


def sample(local: float, offset: float, rtt: float = 0.01, resolution: float = 1.0) -> SkewSample:
    """The server reads its clock mid-request and truncates to `resolution`."""
    server = local + rtt / 2 + offset
    truncated = server - (server % resolution) if resolution else server
    return SkewSample(local, local + rtt, truncated, resolution)


def test_single_sample_bounds() -> None:
    s = SkewSample(sent=100.2, received=100.3, server_time=100.0)
    assert s.bounds() == pytest.approx((-0.3, 0.8))


def test_no_skew_is_ok() -> None:
    check = assess_skew([sample(1000.0 + i * 0.27, 0.0) for i in range(4)])
    assert check.level == "ok"
    assert check.min_skew == 0.0
    assert check.offset_low <= 0 <= check.offset_high
    assert check.latency_slis_trusted


def test_sub_second_phases_narrow_the_bound() -> None:
    one = assess_skew([sample(1000.1, 0.0)])
    many = assess_skew([sample(1000.1 + i * 0.27, 0.0) for i in range(5)])
    assert (many.offset_high - many.offset_low) < (one.offset_high - one.offset_low)
    assert many.offset_high - many.offset_low < 0.35


def test_small_unproven_skew_is_not_a_warning() -> None:
    # 300 ms of real skew cannot be proven from one 1-second stamp: the interval still contains 0.
    check = assess_skew([sample(1000.6, 0.3)])
    assert check.offset_low <= 0
    assert check.level == "ok"


def test_proven_skew_above_100ms_warns() -> None:
    check = assess_skew([sample(1000.0 + i * 0.27, 0.5) for i in range(5)])
    assert check.level == "warn"
    assert 0.1 < check.min_skew <= 0.5
    assert "ahead of" in check.message
    assert check.latency_slis_trusted


def test_skew_above_1s_refuses_latency_slis() -> None:
    check = assess_skew([sample(1000.0 + i * 0.27, -36000.0) for i in range(4)])  # the "9h58m" p50 story
    assert check.level == "refuse"
    assert not check.latency_slis_trusted
    assert check.min_skew > 35000
    assert "behind" in check.message
    assert "not reported" in check.message and "NTP" in check.message


def test_precise_stamps_give_tight_bounds() -> None:
    check = assess_skew([SkewSample(1000.0, 1000.002, 1000.151, resolution=1e-6)])
    assert check.offset_low == pytest.approx(0.149)
    assert check.offset_high == pytest.approx(0.151, abs=1e-5)
    assert check.level == "warn"


def test_disagreeing_samples_fall_back_to_the_hull() -> None:
    check = assess_skew([sample(1000.0, 0.0), sample(1010.0, 5.0)])
    assert not check.consistent
    assert check.offset_low < 0 < check.offset_high
    assert "stepped" in check.message


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        assess_skew([])


def test_parsers() -> None:
    assert parse_rfc3339("2024-03-01T10:00:05Z") == datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC).timestamp()
    assert parse_http_date("Fri, 01 Mar 2024 10:00:05 GMT") == datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC).timestamp()


class FakeMaster:
    """Answers ConfigMap create/get/delete with stamps from a clock `offset` seconds off ours."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    def now(self) -> float:
        import time

        return time.time() + self.offset

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = self.now()
        headers = {"Date": email.utils.formatdate(now, usegmt=True)}
        if request.method == "POST":
            name = f"kubemark-clock-{len(self.created)}"
            self.created.append(name)
            stamp = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body: dict[str, Any] = {"kind": "ConfigMap", "metadata": {"name": name, "creationTimestamp": stamp}}
            return web.Response(body=codec.dumps(body), status=201, content_type="application/json", headers=headers)
        if request.method == "DELETE":
            self.deleted.append(request.path.rsplit("/", 1)[1])
        return web.Response(body=b'{"kind":"ConfigMap"}', content_type="application/json", headers=headers)


@pytest.mark.parametrize(("offset", "level"), [(0.0, "ok"), (-7200.0, "refuse")])
async def test_probe_against_a_server(offset: float, level: str) -> None:
    master = FakeMaster(offset)
    server = TestServer(master.app, host="127.0.0.1")
    await server.start_server()
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    try:
        async with RestClient(
            ClusterCredentials(server=str(server.make_url("/")).rstrip("/")), qps=1000, burst=100
        ) as client:
            check = await probe_clock_skew(client, rounds=3, sleep=no_wait)
    finally:
        await server.close()
    assert check.samples == 6  # creationTimestamp + Date per round
    assert check.level == level
    assert master.created == master.deleted  # nothing left behind
    assert slept == [0.27, 0.27]
    assert check.offset_low - 1e-6 <= offset <= check.offset_high + 1e-6
