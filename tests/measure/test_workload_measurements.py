"""JobLifecycleLatency, ContainerRestarts and NetworkProgrammingLatency through the dispatcher, against the
in-process API server (and the hollow pool's own metrics registry for kube-proxy's histogram)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.hollow.metrics import PoolMetrics
from kubemark.kube.meta import now_rfc3339, parse_time
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.component_metrics import KUBE_PROXY, MetricsReader, exposition_reader
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

from .conftest import bind, pod, running_status, set_status

PODS = resource_path("", "v1", "pods", "default")
JOBS = resource_path("batch", "v1", "jobs", "default")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def context(admin: RestClient, pods: ObjectWatch, readers: dict[str, MetricsReader] | None = None) -> MeasureContext:
    return MeasureContext(
        client=admin, pods=pods, thresholds=SLOThresholds(), recorder=ApiCallRecorder(), component_metrics=readers or {}
    )


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str, group: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"group": group}},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
            }
        },
    }


async def set_job_times(admin: RestClient, name: str, start_after: float, complete_after: float | None) -> None:
    path = f"{JOBS}/{name}"
    current = await admin.get(path)
    created = parse_time(current["metadata"]["creationTimestamp"])
    status: dict[str, Any] = {"startTime": rfc3339(created + start_after), "active": 1}
    if complete_after is not None:
        status = {
            "startTime": rfc3339(created + start_after),
            "completionTime": rfc3339(created + complete_after),
            "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        }
    current["status"] = status
    await admin.replace(path + "/status", current)


async def test_job_lifecycle_latency_per_transition(admin: RestClient, pod_watch: ObjectWatch) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("JobLatency", "JobLifecycleLatency", action="start", labelSelector="group=batch"))
    for i, (start, complete) in enumerate([(1, 3), (2, 6), (1, 2)]):
        await admin.create(JOBS, job(f"j{i}", "batch"))
        await set_job_times(admin, f"j{i}", start, None)
        await set_job_times(admin, f"j{i}", start, complete)
    await admin.create(JOBS, job("other", "unrelated"))  # not selected: never waited for
    await mset.execute(step("JobLatency", "JobLifecycleLatency", action="gather", timeout="10s"))
    [summary] = mset.result.summaries
    assert summary.name == "JobLifecycleLatency_JobLatency"
    items = {item["labels"]["Metric"]: item for item in summary.content["dataItems"]}
    assert items["create_to_start"]["data"] == {"Perc50": 1000.0, "Perc90": 2000.0, "Perc99": 2000.0}
    assert items["start_to_complete"]["data"] == {"Perc50": 2000.0, "Perc90": 4000.0, "Perc99": 4000.0}
    assert {item["unit"] for item in items.values()} == {"ms"}


async def test_job_lifecycle_latency_gathers_what_completed_when_a_job_does_not(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("J", "JobLifecycleLatency", action="start"))
    await admin.create(JOBS, job("done", "g"))
    await set_job_times(admin, "done", 1, 4)
    await admin.create(JOBS, job("stuck", "g"))
    await set_job_times(admin, "stuck", 2, None)
    await mset.execute(step("J", "JobLifecycleLatency", action="gather", timeout="300ms"))
    items = {i["labels"]["Metric"]: i["data"] for i in mset.result.summaries[0].content["dataItems"]}
    assert items["create_to_start"]["Perc99"] == 2000.0  # both started
    assert items["start_to_complete"] == {"Perc50": 3000.0, "Perc90": 3000.0, "Perc99": 3000.0}  # only "done"


def restarted(status: dict[str, Any], count: int) -> dict[str, Any]:
    status["containerStatuses"][0]["restartCount"] = count
    return status


async def test_container_restarts_counts_restarts_since_start_against_the_allowance(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    for name in ("web-1", "db-1"):
        await admin.create(PODS, pod(name))
        await bind(admin, name, "n1")
        await set_status(admin, name, restarted(running_status(now_rfc3339()), 1))  # before the window
    assert await pod_watch.wait_until(
        lambda: len(pod_watch.list()) == 2 and all(p["status"].get("containerStatuses") for p in pod_watch.list()), 5
    )
    mset = MeasurementSet(context(admin, pod_watch))
    params = {
        "enableViolations": True,
        "defaultAllowedRestarts": 1,
        "customAllowedRestarts": "- pod: db-*\n  allowedRestarts: 5\n",
    }
    await mset.execute(step("ContainerRestarts", "ContainerRestarts", action="start", **params))
    await set_status(admin, "web-1", restarted(running_status(now_rfc3339()), 4))  # 3 restarts in the window
    await set_status(admin, "db-1", restarted(running_status(now_rfc3339()), 3))  # 2, allowed up to 5

    def seen() -> dict[str, int]:
        return {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"] for p in pod_watch.list()}

    assert await pod_watch.wait_until(lambda: seen() == {"web-1": 4, "db-1": 3}, 5)
    await mset.execute(step("ContainerRestarts", "ContainerRestarts", action="gather"))
    [summary] = mset.result.summaries
    assert summary.name == "ContainerRestarts"
    assert summary.content == [
        {"container": "c", "pod": "db-1", "namespace": "default", "restartCount": 2},
        {"container": "c", "pod": "web-1", "namespace": "default", "restartCount": 3},
    ]
    [verdict] = mset.result.verdicts
    assert verdict.name == "container_restarts" and not verdict.passed and verdict.measured == 3
    assert verdict.detail == "restartCount(default/web-1 c) = 3, expected <= 1"


async def test_network_programming_latency_reads_the_hollow_proxies_histogram(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    pool = PoolMetrics()
    pool.programming.observe(100.0)  # before the window: left out
    mset = MeasurementSet(context(admin, pod_watch, {KUBE_PROXY: exposition_reader(pool.exposition)}))
    await mset.execute(step("NetworkProgrammingLatency", "NetworkProgrammingLatency", action="start"))
    for seconds in [0.3] * 50 + [1.5] * 49 + [7.5]:
        pool.programming.observe(seconds)
    await mset.execute(step("NetworkProgrammingLatency", "NetworkProgrammingLatency", action="gather"))
    [summary] = mset.result.summaries
    assert summary.name == "NetworkProgrammingLatency" and summary.content["version"] == "v1"
    [item] = summary.content["dataItems"]
    assert item["labels"] == {"Metric": "NetworkProgrammingLatency"} and item["unit"] == "ms"
    # histogram_quantile inside kube-proxy's buckets: 50th in (0.25, 0.5], 90th in (1, 2], 99th in (1, 2].
    assert item["data"]["Perc50"] == pytest.approx(500.0)
    assert 1000.0 < item["data"]["Perc90"] <= 2000.0
    assert item["data"]["Perc99"] == pytest.approx(2000.0)
    assert mset.result.warnings == []


async def test_network_programming_latency_without_kube_proxy_metrics_is_not_measured(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute_all([step("N", "NetworkProgrammingLatency", action="start")])
    await asyncio.gather(mset.execute(step("N", "NetworkProgrammingLatency", action="gather")))
    [warning] = mset.result.warnings
    assert warning.method == "NetworkProgrammingLatency" and "kube-proxies" in warning.reason
    assert mset.result.summaries == [] and mset.result.verdicts == []


async def test_system_pod_metrics_counts_kube_system_restarts_since_start(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    system_pods = resource_path("", "v1", "pods", "kube-system")
    await admin.create(system_pods, pod("coredns-1"))
    await bind(admin, "coredns-1", "n1", namespace="kube-system")
    await set_status(admin, "coredns-1", restarted(running_status(now_rfc3339()), 2), namespace="kube-system")
    await admin.create(PODS, pod("user-pod"))  # not a system pod
    mset = MeasurementSet(context(admin, pod_watch))
    params = {"systemPodMetricsEnabled": True, "enableRestartCountCheck": True, "restartCountThresholdOverrides": ""}
    await mset.execute(step("SystemPodMetrics", "SystemPodMetrics", action="start", **params))
    status = restarted(running_status(now_rfc3339()), 5)
    status["containerStatuses"][0]["lastState"] = {"terminated": {"reason": "Error", "exitCode": 1}}
    await set_status(admin, "coredns-1", status, namespace="kube-system")
    await mset.execute(step("SystemPodMetrics", "SystemPodMetrics", action="gather", **params))
    [summary] = mset.result.summaries
    assert summary.content == {
        "pods": [{"name": "coredns-1", "containers": [{"name": "c", "restartCount": 3, "lastRestartReason": "Error"}]}]
    }
    [verdict] = mset.result.verdicts
    assert verdict.name == "system_pod_restarts" and not verdict.passed and verdict.measured == 3
    assert verdict.detail == "RestartCount(coredns-1, c)=3, want <= 0"


async def test_system_pod_metrics_disabled_measures_nothing(admin: RestClient, pod_watch: ObjectWatch) -> None:
    mset = MeasurementSet(context(admin, pod_watch))
    await mset.execute(step("S", "SystemPodMetrics", action="start"))
    await mset.execute(step("S", "SystemPodMetrics", action="gather"))
    assert mset.result.summaries == [] and mset.result.verdicts == [] and mset.result.warnings == []


async def test_network_programming_latency_of_a_hollow_kube_proxy(admin: RestClient, pod_watch: ObjectWatch) -> None:
    """The hollow kube-proxy programs an EndpointSlice 2.5 s after its trigger time (an injected clock); the
    measurement reads that from the pool registry the proxy records into."""
    from kubemark.hollow.config import NodeConfig
    from kubemark.hollow.proxy import TRIGGER_TIME_ANNOTATION, HollowProxy

    pool = PoolMetrics()
    trigger = 1_700_000_000.0
    config = NodeConfig.model_validate({"proxy": {"minSyncPeriod": 0, "watchServiceCidrs": False}, "events": False})
    proxy = HollowProxy(
        "node-1", admin, config, on_programming_latency=pool.programming.observe, clock=lambda: trigger + 2.5
    )
    mset = MeasurementSet(context(admin, pod_watch, {KUBE_PROXY: exposition_reader(pool.exposition)}))
    await proxy.start()
    try:
        await mset.execute(step("NetworkProgrammingLatency", "NetworkProgrammingLatency", action="start"))
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}},
        }
        await admin.create(resource_path("", "v1", "services", "default"), service)
        endpoint_slice = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "web-abc",
                "labels": {"kubernetes.io/service-name": "web"},
                "annotations": {TRIGGER_TIME_ANNOTATION: rfc3339(trigger)},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        }
        await admin.create(resource_path("discovery.k8s.io", "v1", "endpointslices", "default"), endpoint_slice)
        programmed = "kubeproxy_network_programming_duration_seconds_count"
        while not pool.registry.get_sample_value(programmed):  # each sync sets `synced`; wait for the slice's
            proxy.synced.clear()
            await asyncio.wait_for(proxy.synced.wait(), 10)
        await mset.execute(step("NetworkProgrammingLatency", "NetworkProgrammingLatency", action="gather"))
    finally:
        await proxy.stop()
    [item] = mset.result.summaries[0].content["dataItems"]
    # One 2.5 s sample in kube-proxy's (2, 3] bucket: histogram_quantile interpolates inside it.
    assert item["data"]["Perc50"] == pytest.approx(2500.0)
    assert item["data"]["Perc99"] == pytest.approx(2990.0)
