"""WaitForNodes, WaitForRunningPods and WaitForGenericK8sObjects against the in-process API server: each returns
once its condition holds and fails its step (BarrierTimeout) with what it reached when it does not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.load.measurements import MeasurementSet
from kubemark.measure.api_responsiveness import ApiCallRecorder
from kubemark.measure.barrier import BarrierTimeout
from kubemark.measure.measurement import MeasureContext
from kubemark.measure.slo import SLOThresholds
from kubemark.measure.watch import ObjectWatch

from .conftest import bind, pod, running_status, set_status

NODES = resource_path("", "v1", "nodes")
PODS = resource_path("", "v1", "pods", "default")


def step(identifier: str, method: str, **params: object) -> MeasurementStep:
    return MeasurementStep(Identifier=identifier, Method=method, Params=params)


def node(name: str, *, ready: bool, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


async def set_ready(admin: RestClient, name: str) -> None:
    current = await admin.get(f"{NODES}/{name}")
    current["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    await admin.replace(f"{NODES}/{name}/status", current)


@pytest.fixture
async def mset(admin: RestClient, pod_watch: ObjectWatch) -> Any:
    ctx = MeasureContext(client=admin, pods=pod_watch, thresholds=SLOThresholds(), recorder=ApiCallRecorder())
    measurements = MeasurementSet(ctx)
    try:
        yield measurements
    finally:
        await measurements.finish()


async def test_wait_for_nodes_returns_once_enough_selected_nodes_are_ready(
    admin: RestClient, mset: MeasurementSet
) -> None:
    await admin.create(NODES, node("n1", ready=True, labels={"pool": "a"}))
    await admin.create(NODES, node("n2", ready=False, labels={"pool": "a"}))
    await admin.create(NODES, node("other", ready=True, labels={"pool": "b"}))
    wait = step(
        "W", "WaitForNodes", minDesiredNodeCount=2, maxDesiredNodeCount=2, labelSelector="pool=a", timeout="10s"
    )
    waiting = asyncio.create_task(mset.execute(wait))
    await asyncio.sleep(0)  # let it start waiting on the nodes watch
    assert not waiting.done()
    await set_ready(admin, "n2")
    await asyncio.wait_for(waiting, 10)
    assert mset.result.verdicts == [] and mset.result.warnings == []


async def test_wait_for_nodes_times_out_with_the_count_it_saw(admin: RestClient, mset: MeasurementSet) -> None:
    await admin.create(NODES, node("n1", ready=True))
    with pytest.raises(BarrierTimeout, match=r"W: 1 ready nodes after 0.2s, expected between 3 and 5"):
        await mset.execute(step("W", "WaitForNodes", minDesiredNodeCount=3, maxDesiredNodeCount=5, timeout="200ms"))


async def test_wait_for_running_pods_counts_running_pods_matching_the_selector(
    admin: RestClient, mset: MeasurementSet, pod_watch: ObjectWatch
) -> None:
    for name in ("a", "b"):
        await admin.create(PODS, pod(name, {"app": "x"}))
    await admin.create(PODS, pod("unrelated", {"app": "y"}))
    await bind(admin, "a", "node-1")
    await set_status(admin, "a", running_status(now_rfc3339()))
    with pytest.raises(BarrierTimeout, match=r"1 of 2 pods running after 0.2s \(2 matching\): default/b \(Pending\)"):
        await mset.execute(step("P", "WaitForRunningPods", desiredPodCount=2, labelSelector="app=x", timeout="200ms"))
    await bind(admin, "b", "node-1")
    await set_status(admin, "b", running_status(now_rfc3339()))
    await mset.execute(
        step("P", "WaitForRunningPods", desiredPodCount=2, labelSelector="app=x", namespace="default", timeout="10s")
    )
    running = [p for p in pod_watch.list() if p["status"].get("phase") == "Running"]
    assert sorted(p["metadata"]["name"] for p in running) == ["a", "b"]


async def test_wait_for_running_pods_rejects_a_field_it_cannot_match(mset: MeasurementSet) -> None:
    with pytest.raises(ValueError, match=r"only metadata\.name"):
        await mset.execute(step("P", "WaitForRunningPods", desiredPodCount=1, fieldSelector="spec.schedulerName=x"))


def _job(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"group": "g"}},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
            }
        },
    }


async def _set_condition(admin: RestClient, namespace: str, name: str, kind: str, status: str) -> None:
    path = resource_path("batch", "v1", "jobs", namespace, name)
    current = await admin.get(path)
    now = now_rfc3339()
    current["status"] = {
        "conditions": [{"type": kind, "status": status, "lastProbeTime": now, "lastTransitionTime": now}],
        "startTime": now,
        **({"completionTime": now, "succeeded": 1} if kind == "Complete" else {"failed": 1}),
    }
    await admin.replace(path + "/status", current)


async def test_wait_for_generic_objects_counts_conditions_in_the_namespace_range(
    admin: RestClient, mset: MeasurementSet
) -> None:
    for ns in ("test-1", "test-2", "elsewhere"):
        await admin.create(
            resource_path("", "v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        await admin.create(resource_path("batch", "v1", "jobs", ns), _job("j", ns))
    params = {
        "objectGroup": "batch",
        "objectVersion": "v1",
        "objectResource": "jobs",
        "namespaceRange": {"min": 1, "max": 2, "prefix": "test"},
        "successfulConditions": ["Complete=True"],
        "failedConditions": ["Failed=True"],
        "minDesiredObjectCount": 2,
        "maxFailedObjectCount": 0,
        "timeout": "200ms",
    }
    await _set_condition(admin, "test-1", "j", "Complete", "True")
    await _set_condition(admin, "elsewhere", "j", "Complete", "True")  # outside the range: not counted
    with pytest.raises(BarrierTimeout, match=r"G: 1 of 2 jobs reached Complete=True after 0.2s"):
        await mset.execute(step("G", "WaitForGenericK8sObjects", **params))
    await _set_condition(admin, "test-2", "j", "Complete", "True")
    await mset.execute(step("G", "WaitForGenericK8sObjects", **{**params, "timeout": "10s"}))
    await _set_condition(admin, "test-2", "j", "Failed", "True")
    with pytest.raises(BarrierTimeout, match=r"G: 1 jobs have a failed condition \(Failed=True\), more than 0"):
        await mset.execute(step("G", "WaitForGenericK8sObjects", **{**params, "timeout": "10s"}))


def test_controlled_pods_default_to_the_kinds_own_api_version() -> None:
    from kubemark.measure.methods.wait_for_controlled_pods import default_api_version

    assert default_api_version("ReplicationController") == "v1"
    assert default_api_version("Deployment") == "apps/v1"
    assert default_api_version("Job") == "batch/v1"
    assert default_api_version("SomethingElse") == "apps/v1"


async def test_a_barrier_on_an_unserved_resource_fails_at_start_and_its_gather_says_not_started(
    mset: MeasurementSet,
) -> None:
    # The watch of a resource the server does not serve is refused at once (404), not after a minute of retries;
    # the measurement then is not running, and its gather fails as clusterloader2's "has not been started".
    start = step("W", "WaitForControlledPodsRunning", action="start", apiVersion="apps/v1", kind="Nonsense")
    with pytest.raises(LookupError, match=r"does not serve /apis/apps/v1/nonsenses \(404\)"):
        await mset.execute(start)
    with pytest.raises(RuntimeError, match="W: gathered before it was started"):
        await mset.execute(step("W", "WaitForControlledPodsRunning", action="gather"))
    # A ReplicationController without apiVersion is watched at /api/v1, and its (empty) wait returns.
    await mset.execute(step("RC", "WaitForControlledPodsRunning", action="start", kind="ReplicationController"))
    await mset.execute(step("RC", "WaitForControlledPodsRunning", action="gather", timeout="5s"))
