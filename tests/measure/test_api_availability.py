"""APIAvailability: /readyz probes of the in-process API server (answering) and of a closed port (not)."""

from __future__ import annotations

import socket

from kubemark.client import ClusterCredentials, RestClient
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.methods.api_availability import APIAvailability, go_duration
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_probes_of_an_answering_then_a_dead_api_server(admin: RestClient, pod_watch: ObjectWatch) -> None:
    dead = RestClient(ClusterCredentials(server=f"http://127.0.0.1:{closed_port()}"), qps=0, burst=1, max_retries=0)
    try:
        live_set = MeasurementSet(
            MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
        )
        params = {"pollFrequency": "1h", "hostPollTimeoutSeconds": 2, "threshold": 99.5}  # probes driven below
        await live_set.execute(step("APIAvailability", "APIAvailability", action="start", **params))
        probe = live_set.running["APIAvailability"]
        assert isinstance(probe, APIAvailability)
        assert [await probe.probe_once() for _ in range(3)] == [True, True, True]
        probe.ctx = MeasureContext(client=dead, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
        assert [await probe.probe_once() for _ in range(2)] == [False, False]
        probe.ctx = live_set.ctx
        assert await probe.probe_once()
        await live_set.execute(step("APIAvailability", "APIAvailability", action="gather"))
    finally:
        await dead.close()
    [summary] = live_set.result.summaries
    assert summary.name == "APIAvailability"
    assert summary.content == {
        "clusterMetrics": {"availabilityPercentage": 100.0 * 4 / 6, "longestUnavailablePeriod": "2h0m0s"},
        "hostMetrics": None,
    }
    [verdict] = live_set.result.verdicts
    assert verdict.name == "api_availability" and not verdict.passed and verdict.threshold == 99.5
    assert verdict.detail == "4 of 6 /readyz probes answered; expected >= 99.5%"


def test_go_durations() -> None:
    assert [go_duration(s) for s in (0, 0.5, 5, 90, 3600, 3725)] == ["0s", "500ms", "5s", "1m30s", "1h0m0s", "1h2m5s"]
