"""WaitForControlledPodsRunning against the in-process API server, pods driven by the test."""

from __future__ import annotations

import pytest

from kubemark.client import RestClient, resource_path
from kubemark.kube.meta import now_rfc3339
from kubemark.measure.barrier import BarrierTimeout, ControlledPodsBarrier
from kubemark.measure.watch import ObjectWatch

from .conftest import bind, pod, running_status, set_status

PODS = resource_path("", "v1", "pods", "default")
DEPLOYMENTS = resource_path("apps", "v1", "deployments", "default")


def deployment(name: str, replicas: int) -> dict:
    labels = {"name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"group": "latency"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


async def test_timeout_names_stuck_pods_then_passes_once_running(admin: RestClient, pod_watch: ObjectWatch) -> None:
    objects = ObjectWatch(admin, resource_path("apps", "v1", "deployments"))
    await objects.start(10)
    try:
        barrier = ControlledPodsBarrier(objects, pod_watch, label_selector="group = latency")
        barrier.start()
        await admin.create(DEPLOYMENTS, deployment("web", 2))
        await admin.create(PODS, pod("web-a", {"name": "web"}))
        await admin.create(PODS, pod("web-b", {"name": "web"}))
        await bind(admin, "web-a", "node-1")
        await set_status(admin, "web-a", running_status(now_rfc3339()))
        stuck = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    "lastTransitionTime": now_rfc3339(),
                }
            ],
        }
        await set_status(admin, "web-b", stuck)

        with pytest.raises(BarrierTimeout) as info:
            await barrier.wait(0.5)
        message = str(info.value)
        assert "Deployment default/web: 1 of 2 pods Running" in message
        assert "default/web-b [Pending, no node]" in message
        assert "PodScheduled=False (Unschedulable): 0/3 nodes are available: 3 Insufficient cpu." in message
        assert "web-a" not in message

        await bind(admin, "web-b", "node-2")
        await set_status(admin, "web-b", running_status(now_rfc3339()))
        await barrier.wait(5)
        assert barrier.problems() == []

        # Deleting the deployment: the barrier now waits for its pods to be gone.
        await admin.delete(DEPLOYMENTS + "/web")
        assert await objects.wait_until(lambda: not objects.list(), 5)
        with pytest.raises(BarrierTimeout, match="deleted default/web: 2 pods still exist"):
            await barrier.wait(0.3)
        await admin.delete(PODS + "/web-a", grace_period_seconds=0)
        await admin.delete(PODS + "/web-b", grace_period_seconds=0)
        await barrier.wait(5)
        barrier.stop()
    finally:
        await objects.stop()


async def test_objects_created_before_the_watch_sees_them_are_waited_for(
    admin: RestClient, pod_watch: ObjectWatch
) -> None:
    """A phase creates Deployments and the barrier is asked at once: its watch may not have seen them yet, and
    "every tracked Deployment is running" must not hold vacuously."""
    objects = ObjectWatch(admin, resource_path("apps", "v1", "deployments"))
    await objects.stop()  # a watch that never catches up: the barrier must still not pass

    async def lister() -> list[dict]:
        items, _ = await admin.list_all(resource_path("apps", "v1", "deployments"), label_selector="group=latency")
        return items

    barrier = ControlledPodsBarrier(objects, pod_watch, label_selector="group = latency", lister=lister)
    await admin.create(DEPLOYMENTS, deployment("fresh", 1))
    with pytest.raises(BarrierTimeout, match="default/fresh: not yet observed by the watch"):
        await barrier.wait(0.3)
    # Without a lister the same barrier would have passed on the empty watch.
    assert ControlledPodsBarrier(objects, pod_watch, label_selector="group = latency").problems() == []


def test_desired_pods_per_kind_as_clusterloader2() -> None:
    """GetReplicasFromRuntimeObject: replicas, a Job's parallelism, a DaemonSet's scheduled count once known."""
    from kubemark.measure.barrier import desired_pods

    assert desired_pods("Deployment")({"spec": {"replicas": 3}}) == 3
    assert desired_pods("StatefulSet")({"spec": {}}) == 1  # replicas defaults to 1
    assert desired_pods("Deployment")({"spec": {"replicas": 0}}) == 0
    assert desired_pods("Job")({"spec": {"parallelism": 4, "completions": 10}}) == 4
    assert desired_pods("Job")({"spec": {}}) == 1
    daemon = desired_pods("DaemonSet")
    fresh = {"metadata": {"generation": 1}, "spec": {}, "status": {}}
    assert daemon(fresh) is None  # its controller has not counted the nodes yet: not 0, or the barrier passes
    synced = {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3}}
    assert daemon(synced) == 3
    changed = {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 3}}
    assert daemon(changed) is None
