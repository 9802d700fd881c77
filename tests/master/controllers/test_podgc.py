"""Pod garbage collector against the embedded API server."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.podgc import PodGCController

PODS = resource_path("", "v1", "pods", "default")
NODES = resource_path("", "v1", "nodes")

Obj = dict[str, Any]


def pod(name: str, node: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"gc": "test"}}, "spec": spec}


async def names(cluster) -> set[str]:
    return {p["metadata"]["name"] for p in await cluster.pods(selector="gc=test")}


async def test_pods_of_a_deleted_node_are_force_deleted(cluster) -> None:
    for node in ("n1", "n2"):
        await cluster.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    for name, node in (("a1", "n1"), ("a2", "n1"), ("b1", "n2")):
        created = await cluster.client.create(PODS, pod(name, node))
        await cluster.set_pod_status(created, ip="10.0.0.1")
    gc = PodGCController(cluster.client, cluster.informers, period=0.05, quarantine=0)
    await cluster.run(gc)
    passes = gc.passes
    await cluster.wait_until(lambda: _true(gc.passes > passes + 1), what="two GC passes")
    assert await names(cluster) == {"a1", "a2", "b1"}  # every node exists: nothing to do

    await cluster.client.delete(resource_path("", "v1", "nodes", None, "n1"))

    async def only_b1() -> bool:
        return await names(cluster) == {"b1"}

    await cluster.wait_until(only_b1, what="pods of n1 deleted")


async def test_terminated_pods_over_threshold_are_deleted(cluster) -> None:
    for i in range(5):
        created = await cluster.client.create(PODS, pod(f"done-{i}"))
        await cluster.set_pod_status(created, phase="Succeeded", ready=False)
    running = await cluster.client.create(PODS, pod("running"))
    await cluster.set_pod_status(running, phase="Running")
    gc = PodGCController(cluster.client, cluster.informers, period=0.05, terminated_pod_gc_threshold=2)
    await cluster.run(gc)

    async def trimmed() -> set[str] | None:
        left = await names(cluster)
        return left if len(left) == 3 else None

    left = await cluster.wait_until(trimmed, what="3 terminated pods deleted")
    assert "running" in left
    passes = gc.passes
    await cluster.wait_until(lambda: _true(gc.passes > passes + 1), what="two more GC passes")
    assert await names(cluster) == left  # at the threshold: nothing more to delete


async def _true(value: bool) -> bool:
    return value
