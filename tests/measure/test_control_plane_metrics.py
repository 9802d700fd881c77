"""SchedulingMetrics, EtcdMetrics, MetricsForE2E and the TestMetrics bundle against real components: the
in-process API server (with its /metrics), the embedded scheduler's /metrics, and a real etcd's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubemark.client import ClusterCredentials, RestClient, resource_path
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.master.apiserver.filters import metrics_route
from kubemark.master.apiserver.metrics import APIServerMetrics
from kubemark.master.apiserver.server import APIServer, APIServerConfig
from kubemark.master.scheduler import Scheduler
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.component_metrics import ETCD, SCHEDULER, MetricsReader, http_metrics_reader
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.methods.scheduling_metrics import EXTENSION_POINTS, scheduling_metrics_summary
from kubemark.measure.results import MeasurementResult
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

from .conftest import pod

NODES = resource_path("", "v1", "nodes")
PODS = resource_path("", "v1", "pods", "default")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def node(name: str) -> dict[str, Any]:
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    metrics = APIServerMetrics()
    config = APIServerConfig(
        storage="memory", compaction_interval=0, metrics=metrics, extra_routes=[metrics_route(metrics)]
    )
    apiserver = APIServer(config)
    await apiserver.start()
    try:
        yield apiserver
    finally:
        await apiserver.stop()


@pytest.fixture
async def client(server: APIServer) -> AsyncIterator[RestClient]:
    rest = RestClient(ClusterCredentials(server=server.url), qps=0, burst=1, max_retries=1)
    try:
        yield rest
    finally:
        await rest.close()


@pytest.fixture
async def pods(client: RestClient) -> AsyncIterator[ObjectWatch]:
    watch = ObjectWatch(client, resource_path("", "v1", "pods"))
    await watch.start(10)
    try:
        yield watch
    finally:
        await watch.stop()


@pytest.fixture
async def scheduler(client: RestClient) -> AsyncIterator[Scheduler]:
    for i in range(3):
        await client.create(NODES, node(f"n{i}"))
    running = Scheduler(client, metrics_port=0, post_events=False)
    await running.start()
    try:
        assert await running.wait_synced(10)
        yield running
    finally:
        await running.stop()


def context(client: RestClient, pods: ObjectWatch, readers: dict[str, MetricsReader]) -> MeasureContext:
    return MeasureContext(
        client=client,
        pods=pods,
        thresholds=SLOThresholds(),
        recorder=ApiCallRecorder(),
        component_metrics=readers,
    )


async def schedule(client: RestClient, pods: ObjectWatch, names: list[str]) -> None:
    for name in names:
        await client.create(PODS, pod(name, {"app": "s"}))
    bound = lambda: sum(1 for p in pods.list() if p["spec"].get("nodeName")) >= len(names)  # noqa: E731
    assert await pods.wait_until(bound, 20)


def only_summary(result: MeasurementResult, name: str) -> Any:
    [content] = [s.content for s in result.summaries if s.name == name]
    return content


async def test_scheduling_metrics_summarise_the_schedulers_histograms_over_the_window(
    client: RestClient, pods: ObjectWatch, scheduler: Scheduler
) -> None:
    url = f"http://127.0.0.1:{scheduler.metrics_port}/metrics"
    mset = MeasurementSet(context(client, pods, {SCHEDULER: http_metrics_reader(url)}))
    await mset.execute(step("SchedulingMetrics", "SchedulingMetrics", action="start"))
    await schedule(client, pods, [f"p{i}" for i in range(6)])
    await mset.execute(step("SchedulingMetrics", "SchedulingMetrics", action="gather"))
    assert mset.result.warnings == []
    summary = only_summary(mset.result, "SchedulingMetrics")
    assert set(summary) == {
        "frameworkExtensionPointDuration",
        "preemptionEvaluationLatency",
        "e2eSchedulingLatency",
        "schedulingLatency",
    }
    assert list(summary["frameworkExtensionPointDuration"]) == list(EXTENSION_POINTS)
    e2e, algorithm = summary["e2eSchedulingLatency"], summary["schedulingLatency"]
    assert 0 < e2e["Perc50"] <= e2e["Perc90"] <= e2e["Perc99"] < 10 * 10**9  # ns: real, and under 10 s
    assert 0 < algorithm["Perc50"] <= algorithm["Perc99"]
    assert summary["preemptionEvaluationLatency"] == {"Perc50": 0, "Perc90": 0, "Perc99": 0}  # none happened

    # The window's delta: the same scrape twice is an empty window.
    text = await http_metrics_reader(url)()
    assert scheduling_metrics_summary(text, text)["e2eSchedulingLatency"] == {"Perc50": 0, "Perc90": 0, "Perc99": 0}


async def test_scheduling_metrics_unreachable_is_not_measured_here(client: RestClient, pods: ObjectWatch) -> None:
    mset = MeasurementSet(context(client, pods, {}))
    await mset.execute(step("S", "SchedulingMetrics", action="start"))  # no kube-scheduler pod to proxy to
    await mset.execute(step("S", "SchedulingMetrics", action="gather"))
    [warning] = mset.result.warnings
    assert (warning.method, warning.reason) == (
        "SchedulingMetrics",
        "kube-scheduler's /metrics is not reachable from this run",
    )
    assert mset.result.summaries == []


async def test_etcd_metrics_read_a_real_etcd(tmp_path: Path) -> None:
    config = APIServerConfig(storage="etcd", data_dir=tmp_path / "etcd", unsafe_no_fsync=True, compaction_interval=0)
    apiserver = APIServer(config)
    await apiserver.start()
    rest = RestClient(ClusterCredentials(server=apiserver.url), qps=0, burst=1, max_retries=1)
    watch = ObjectWatch(rest, resource_path("", "v1", "pods"))
    try:
        await watch.start(10)
        reader = http_metrics_reader(f"http://{apiserver.etcd_endpoint}/metrics")
        mset = MeasurementSet(context(rest, watch, {ETCD: reader}))
        await mset.execute(step("EtcdMetrics", "EtcdMetrics", action="start", waitTime="1h"))
        for i in range(5):
            await rest.create(PODS, pod(f"p{i}"))
        await mset.execute(step("EtcdMetrics", "EtcdMetrics", action="gather"))
    finally:
        await watch.stop()
        await rest.close()
        await apiserver.stop()
    summary = only_summary(mset.result, "EtcdMetrics")
    assert set(summary) == {
        "backendCommitDuration",
        "snapshotSaveTotalDuration",
        "peerRoundTripTime",
        "walFsyncDuration",
        "maxDatabaseSize",
    }
    assert summary["maxDatabaseSize"] > 0
    [commits] = summary["backendCommitDuration"]
    assert commits["buckets"]["+Inf"] > 0  # etcd committed our writes to its backend
    assert list(commits["buckets"].values()) == sorted(commits["buckets"].values())  # cumulative


async def test_metrics_for_e2e_and_the_test_metrics_bundle(
    client: RestClient, pods: ObjectWatch, scheduler: Scheduler
) -> None:
    url = f"http://127.0.0.1:{scheduler.metrics_port}/metrics"
    mset = MeasurementSet(context(client, pods, {SCHEDULER: http_metrics_reader(url)}))
    params = {"systemPodMetricsEnabled": True, "clusterOOMsTrackerEnabled": True, "enableRestartCountCheck": True}
    await mset.execute(step("TestMetrics", "TestMetrics", action="start", **params))
    await schedule(client, pods, ["a", "b"])
    await mset.execute(step("TestMetrics", "TestMetrics", action="gather", **params))
    result = mset.result
    assert sorted(s.name for s in result.summaries) == ["MetricsForE2E", "SchedulingMetrics", "SystemPodMetrics"]
    e2e = only_summary(result, "MetricsForE2E")
    assert set(e2e) == {
        "ApiServerMetrics",
        "ControllerManagerMetrics",
        "KubeletMetrics",
        "SchedulerMetrics",
        "ClusterAutoscalerMetrics",
    }
    creates = [
        s
        for s in e2e["ApiServerMetrics"]["etcd_request_duration_seconds_count"]
        if s["metric"].get("operation") == "create"
    ]
    assert creates and all(s["metric"]["__name__"] == "etcd_request_duration_seconds_count" for s in creates)
    assert sum(float(s["value"][1]) for s in creates) >= 2  # at least our two pods (and the nodes)
    [attempts] = [
        s for s in e2e["SchedulerMetrics"]["scheduler_schedule_attempts_total"] if s["metric"]["result"] == "scheduled"
    ]
    assert float(attempts["value"][1]) == 2
    assert only_summary(result, "SystemPodMetrics") == {"pods": []}  # no kube-system pods in this cluster
    [restarts] = result.verdicts
    assert restarts.name == "system_pod_restarts" and restarts.passed
    by_method = {w.method: w.reason for w in result.warnings}
    assert set(by_method) == {
        "EtcdMetrics",
        "MetricsForE2E",
        "CPUProfile",
        "MemoryProfile",
        "BlockProfile",
        "ClusterOOMsTracker",
    }
    assert "kube-controller-manager" in by_method["MetricsForE2E"]
    assert by_method["EtcdMetrics"].startswith("etcd's /metrics is not reachable")
    assert result.usage == []  # no local component processes given: ResourceUsageSummary samples nothing


async def test_a_failing_member_fails_the_bundle_without_losing_the_others(
    client: RestClient, pods: ObjectWatch, scheduler: Scheduler
) -> None:
    async def broken() -> str:
        raise OSError("connection refused by the test")

    url = f"http://127.0.0.1:{scheduler.metrics_port}/metrics"
    readers: dict[str, MetricsReader] = {SCHEDULER: http_metrics_reader(url), ETCD: broken}
    mset = MeasurementSet(context(client, pods, readers))
    params = {"systemPodMetricsEnabled": "true"}
    await mset.execute(step("TestMetrics", "TestMetrics", action="start", **params))
    bundle = mset.running["TestMetrics"]
    del bundle.members["SystemPodMetrics"]._initial  # type: ignore[attr-defined]  # its gather now raises
    await mset.execute(step("TestMetrics", "TestMetrics", action="gather", **params))
    [failed] = mset.result.verdicts
    assert failed.name == "measurement TestMetrics/SystemPodMetrics" and not failed.passed
    assert failed.detail.startswith("action gather failed for SystemPodMetrics measurement: AttributeError")
    assert {s.name for s in mset.result.summaries} == {"SchedulingMetrics", "MetricsForE2E"}
    assert "EtcdMetrics" in {w.method for w in mset.result.warnings}  # its reader failed: not reachable
