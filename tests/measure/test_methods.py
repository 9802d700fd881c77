"""The registered measurements through the dispatcher, against the in-process API server."""

from __future__ import annotations

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.results import ApiCall
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

from .conftest import bind, pod, running_status, set_status

PODS = resource_path("", "v1", "pods", "default")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def context(admin: RestClient, pods: ObjectWatch, **kw: object) -> MeasureContext:
    return MeasureContext(client=admin, pods=pods, thresholds=SLOThresholds(), recorder=ApiCallRecorder(), **kw)  # type: ignore[arg-type]


async def _run_one_pod(admin: RestClient, pod_watch: ObjectWatch, mset: MeasurementSet, identifier: str) -> None:
    await mset.execute(step(identifier, "PodStartupLatency", action="start", labelSelector="group=latency"))
    await admin.create(PODS, pod("p1", {"group": "latency"}))
    await bind(admin, "p1", "node-a")
    await set_status(admin, "p1", running_status(now_rfc3339()))
    tracker_done = lambda: any(p.get("status", {}).get("phase") == "Running" for p in pod_watch.list())  # noqa: E731
    assert await pod_watch.wait_until(tracker_done, 5)
    await mset.execute(step(identifier, "PodStartupLatency", action="gather", threshold="3s"))


async def test_pod_startup_latency_gives_a_verdict_and_the_pods_under_its_identifier(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await _run_one_pod(admin, pod_watch, mset, "PodStartupLatency")
    [verdict] = mset.result.verdicts
    assert verdict.name == "pod_startup_latency"
    assert verdict.threshold == 3.0 and verdict.passed
    assert verdict.detail.startswith("PodStartupLatency, stateless pods: pod_startup: perc50")
    assert [t.name for t in mset.result.pods["PodStartupLatency"]] == ["default/p1"]
    assert mset.running == {}


async def test_pod_startup_latency_is_refused_when_clocks_cannot_be_trusted(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    mset = MeasurementSet(context(admin, pod_watch, latency_trusted=False, skew_reason="clock 3 s ahead"))
    await _run_one_pod(admin, pod_watch, mset, "Latency")
    [verdict] = mset.result.verdicts
    assert verdict.name == "pod_startup_latency Latency"
    assert not verdict.passed and verdict.detail == "not evaluated: clock 3 s ahead"


async def test_api_responsiveness_without_server_metrics_judges_the_recorded_calls_of_its_window(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    # The in-process server has no /metrics: the measurement falls back to the player's recorded calls.
    ctx = context(admin, pod_watch)
    ctx.recorder.calls.append(ApiCall(0.0, "POST", "pods", "", "namespace", 201, 9.0))  # before the window
    mset = MeasurementSet(ctx)
    await mset.execute(step("API", "APIResponsivenessPrometheus", action="start"))
    ctx.recorder.calls += [ApiCall(1.0, "POST", "pods", "", "namespace", 201, 0.2) for _ in range(3)]
    ctx.recorder.calls.append(ApiCall(1.0, "GET", "pods", "", "resource", None, 50.0))  # unanswered: left out
    # clusterloader2 judges the calls only with enableViolations (this identifier's verdicts carry its name).
    await mset.execute(step("API", "APIResponsiveness", action="gather", enableViolations=True))
    assert mset.result.server_latency == []
    [verdict] = mset.result.verdicts
    assert verdict.name == "api_call_latency POST pods namespace API"
    assert verdict.measured == 0.2 and verdict.passed
    [summary] = mset.result.summaries
    assert summary.name == "APIResponsivenessPrometheus"
    [item] = summary.content["dataItems"]
    assert item["labels"]["Count"] == "3" and item["data"]["Perc99"] == 200.0


async def test_scheduling_throughput_takes_its_threshold_from_params(admin: RestClient, pod_watch: ObjectWatch) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("ST", "SchedulingThroughput", action="start", samplingInterval="10ms"))
    sampler = mset.running["ST"]._sampler  # type: ignore[attr-defined]
    await admin.create(PODS, pod("s1"))
    await bind(admin, "s1", "node-a")
    assert await pod_watch.wait_until(lambda: sampler.scheduled == 1, 5)
    await mset.execute(step("ST", "SchedulingThroughput", action="gather", threshold=1000))
    [verdict] = mset.result.verdicts
    assert verdict.name == "scheduling_throughput"
    assert verdict.threshold == 1000 and not verdict.passed  # one pod is far from 1,000 pods/s
    assert mset.running == {} and sampler not in pod_watch._subscribers
