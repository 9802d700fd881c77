"""The ChaosMonkey measurement (start/stop around steps, on a node pool the test fakes) and APICallLatency
(reset/gather, clusterloader2's 2018 summary that never fails a test)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from kubemark.client import RestClient
from kubemark.load.config import ConfigError, TestConfig
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet, validate_measurements
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

from .test_api_responsiveness_violations import AFTER, BEFORE, MetricsClient


class Pool:
    """Hollow nodes the measurement may fail: records stops and starts, and signals each stop."""

    def __init__(self, *names: str) -> None:
        self.names = list(names)
        self.stopped: list[str] = []
        self.started: list[str] = []
        self.stop_seen = asyncio.Event()

    def node_names(self) -> list[str]:
        return list(self.names)

    async def stop_node(self, name: str) -> None:
        self.stopped.append(name)
        self.stop_seen.set()

    async def start_node(self, name: str) -> None:
        self.started.append(name)


def step(identifier: str, method: str, **params: Any) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def _mset(client: Any = None, pool: Pool | None = None) -> MeasurementSet:
    ctx = MeasureContext(
        client=cast(RestClient, client),
        pods=cast(ObjectWatch, None),
        thresholds=SLOThresholds(),
        recorder=ApiCallRecorder(),
        node_failures=pool,
    )
    return MeasurementSet(ctx)


FAILURE = {"failureRate": 0.5, "interval": "10ms", "jitterFactor": 0.0, "simulatedDowntime": "1h"}


@pytest.mark.timeout(20)
async def test_chaos_monkey_fails_nodes_between_start_and_stop_and_never_the_same_twice() -> None:
    pool = Pool("n1", "n2")
    mset = _mset(pool=pool)
    await mset.execute(step("Chaos", "ChaosMonkey", action="start", **FAILURE))
    await asyncio.wait_for(pool.stop_seen.wait(), 10)  # one of two nodes (ceil(0.5 x 2)) is down for "1h"
    await mset.execute(step("Chaos", "ChaosMonkey", action="stop"))
    [first] = pool.stopped
    assert pool.started == [first]  # its downtime cut short by stop: back before stop returns
    pool.stop_seen.clear()
    await mset.execute(step("Chaos", "ChaosMonkey", action="start", **FAILURE))  # the same instance
    await asyncio.wait_for(pool.stop_seen.wait(), 10)
    await mset.execute(step("Chaos", "ChaosMonkey", action="stop"))
    assert sorted(pool.stopped) == ["n1", "n2"]  # the second start failed the other node
    assert sorted(pool.started) == ["n1", "n2"]
    assert mset.result.summaries == [] and mset.result.verdicts == [] and mset.result.warnings == []
    await mset.finish()
    assert mset.result.summaries == []


async def test_chaos_monkey_without_hollow_nodes_warns_at_stop() -> None:
    mset = _mset()
    await mset.execute(step("Chaos", "ChaosMonkey", action="start", **FAILURE))
    await mset.execute(step("Chaos", "ChaosMonkey", action="stop"))
    [warning] = mset.result.warnings
    assert warning.method == "ChaosMonkey" and "no hollow nodes" in warning.reason


def _problems(*measurements: dict[str, Any]) -> list[tuple[str, str]]:
    config = TestConfig.model_validate(
        {"name": "t", "namespace": {"number": 1}, "steps": [{"measurements": list(measurements)}]}
    )
    try:
        validate_measurements(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def test_validation_of_chaos_monkey_and_api_call_latency() -> None:
    assert (
        _problems(
            {"Identifier": "C", "Method": "ChaosMonkey", "Params": {"action": "start", **FAILURE}},
            {"Identifier": "C", "Method": "ChaosMonkey", "Params": {"action": "stop"}},
            {"Identifier": "L", "Method": "APICallLatency", "Params": {"action": "reset"}},
            {"Identifier": "L", "Method": "APICallLatency", "Params": {"action": "gather", "nodeCount": 100}},
        )
        == []
    )
    problems = _problems(
        {"Identifier": "C", "Method": "ChaosMonkey", "Params": {"action": "gather"}},
        {"Identifier": "C", "Method": "ChaosMonkey", "Params": {"action": "start", "failureRate": 2}},
        {"Identifier": "L", "Method": "APICallLatency", "Params": {"action": "gather"}},
    )
    assert problems[0] == (
        "steps[0].measurements[0].Params.action",
        'ChaosMonkey has no action "gather" (known: start, stop)',
    )
    assert [where for where, _ in problems[1:]] == [
        "steps[0].measurements[1].Params.failureRate",
        "steps[0].measurements[1].Params.interval",
        "steps[0].measurements[2].Params.nodeCount",
    ]
    assert problems[-1][1] == "APICallLatency's gather needs nodeCount"


async def test_api_call_latency_writes_its_2018_summary_and_never_fails() -> None:
    mset = _mset(MetricsClient(BEFORE, AFTER))
    await mset.execute(step("APICallLatency", "APICallLatency", action="reset"))
    await mset.execute(step("APICallLatency", "APICallLatency", action="gather", nodeCount=3, enableViolations=True))
    assert mset.result.verdicts == []  # a 4.8 s perc99 POST is only logged
    [summary] = mset.result.summaries
    assert summary.name == "APICallLatency"
    post, listing = summary.content["apicalls"]
    assert post == {
        "resource": "pods",
        "subresource": "",
        "verb": "POST",
        "scope": "resource",
        # perc50: rank 5 of the 6 calls within 0.5 s, interpolated: 0.5 x 5/6 s
        "latency": {"Perc50": 416_666_667, "Perc90": 3_000_000_000, "Perc99": 4_800_000_000},
        "count": 10,
    }
    assert listing["verb"] == "LIST" and listing["count"] == 4
