"""NodeHealthTracker and PeriodicPodList against the in-process API server."""

from __future__ import annotations

from typing import Any

from kubemark.client import RestClient, resource_path
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.methods.periodic_pod_list import PeriodicPodList
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

NODES = resource_path("", "v1", "nodes")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def node(name: str, *, ready: bool = True, taint: str | None = None) -> dict[str, Any]:
    spec = {"taints": [{"key": "k", "effect": taint}]} if taint else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def context(admin: RestClient, pods: ObjectWatch) -> MeasureContext:
    return MeasureContext(client=admin, pods=pods, thresholds=SLOThresholds(), recorder=ApiCallRecorder())


async def test_node_health_tracker_reports_a_moment_above_the_threshold(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    for i in range(3):
        await admin.create(NODES, node(f"ok-{i}"))
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("NodeHealth", "NodeHealthTracker", action="start", threshold=1))
    await admin.create(NODES, node("sick", ready=False))  # 1 unhealthy: at the threshold, not above
    await admin.create(NODES, node("tainted", taint="NoSchedule"))  # 2 > 1: reached
    nodes = await mset.ctx.watch(NODES)
    assert await nodes.wait_until(lambda: len(nodes.list()) == 5, 5)
    await admin.delete(f"{NODES}/tainted")  # healthy again at gather, but the moment was recorded
    assert await nodes.wait_until(lambda: len(nodes.list()) == 4, 5)
    await mset.execute(step("NodeHealth", "NodeHealthTracker", action="gather"))
    [summary] = mset.result.summaries
    assert summary.name == "NodeHealthTracker"
    assert summary.content == {"runningNodes": 3, "nodeCount": 4, "thresholdReached": True}
    [verdict] = mset.result.verdicts
    assert verdict.name == "node_health" and not verdict.passed
    assert verdict.detail == (
        "number of unhealthy nodes (2) is above threshold (1), total nodes: 5, example unhealthy node: sick"
    )


async def test_node_health_tracker_passes_when_nodes_stay_healthy(admin: RestClient, pod_watch: ObjectWatch) -> None:
    await admin.create(NODES, node("a"))
    await admin.create(NODES, node("b", ready=False))
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("H", "NodeHealthTracker", action="start"))  # default threshold 4
    await mset.execute(step("H", "NodeHealthTracker", action="gather"))
    assert mset.result.summaries[0].content == {"runningNodes": 1, "nodeCount": 2, "thresholdReached": False}
    assert mset.result.verdicts[0].passed


async def test_periodic_pod_list_lists_at_start_and_stops_at_gather(admin: RestClient, pod_watch: ObjectWatch) -> None:
    recorder = ApiCallRecorder()
    listing = RestClient(admin.creds, qps=0, burst=1, on_request=recorder.on_request)
    try:
        ctx = MeasureContext(client=listing, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
        mset = MeasurementSet(ctx)
        await mset.execute(step("L", "PeriodicPodList", action="start"))
        lister = mset.running["L"]
        assert isinstance(lister, PeriodicPodList)
        await lister.list_once()
        await mset.execute(step("L", "PeriodicPodList", action="gather"))
    finally:
        await listing.close()
    lists = [c for c in recorder.calls if (c.verb, c.resource, c.scope, c.status) == ("LIST", "pods", "cluster", 200)]
    assert len(lists) == lister.lists >= 1  # the one driven above, and the loop's first if it finished in time
    assert mset.running == {} and mset.result.summaries == []
