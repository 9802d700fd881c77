"""Cascading deletion of a Deployment (-> ReplicaSet -> pods) with each propagation policy."""

from __future__ import annotations

from typing import Any

import pytest

from kubemark.client import resource_path
from kubemark.master.controllers.deployment import DeploymentController
from kubemark.master.controllers.garbagecollector import GarbageCollector
from kubemark.master.controllers.replicaset import ReplicaSetController

DEPLOYS = resource_path("apps", "v1", "deployments", "default")
RSS = resource_path("apps", "v1", "replicasets", "default")


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "pause"}]},
            },
        },
    }


async def _start(cluster) -> None:
    await cluster.run(
        DeploymentController(cluster.client, cluster.informers),
        ReplicaSetController(cluster.client, cluster.informers),
        GarbageCollector(cluster.client, cluster.informers),
    )


async def _count(cluster, path: str, selector: str, count: int) -> bool:
    items = (await cluster.client.list(path, label_selector=selector))["items"]
    return len(items) == count


@pytest.mark.parametrize("policy", ["Background", "Foreground"])
async def test_cascading_delete(cluster, policy: str) -> None:
    await _start(cluster)
    await cluster.client.create(DEPLOYS, deployment("cas", 4))
    pods = resource_path("", "v1", "pods", "default")
    await cluster.wait_until(lambda: _count(cluster, pods, "app=cas", 4), what="4 pods")
    await cluster.wait_until(lambda: _count(cluster, RSS, "app=cas", 1), what="1 rs")

    await cluster.client.delete(resource_path("apps", "v1", "deployments", "default", "cas"), propagation_policy=policy)
    if policy == "Foreground":
        # The owner stays (with its finalizer) while its dependents go.
        d = await cluster.get("apps", "v1", "deployments", "default", "cas")
        assert d is None or "foregroundDeletion" in d["metadata"]["finalizers"]
    await cluster.wait_until(lambda: _count(cluster, pods, "app=cas", 0), timeout=15, what="pods deleted")
    await cluster.wait_until(lambda: _count(cluster, RSS, "app=cas", 0), timeout=15, what="rs deleted")

    async def gone() -> bool:
        return await cluster.get("apps", "v1", "deployments", "default", "cas") is None

    await cluster.wait_until(gone, timeout=15, what="deployment gone")


async def test_orphan_delete_keeps_dependents(cluster) -> None:
    await _start(cluster)
    await cluster.client.create(DEPLOYS, deployment("orph", 3))
    pods = resource_path("", "v1", "pods", "default")
    await cluster.wait_until(lambda: _count(cluster, pods, "app=orph", 3), what="3 pods")
    await cluster.wait_until(lambda: _count(cluster, RSS, "app=orph", 1), what="1 rs")
    await cluster.client.delete(
        resource_path("apps", "v1", "deployments", "default", "orph"), propagation_policy="Orphan"
    )

    async def orphaned() -> list | None:
        if await cluster.get("apps", "v1", "deployments", "default", "orph") is not None:
            return None
        items = (await cluster.client.list(RSS, label_selector="app=orph"))["items"]
        return items if len(items) == 1 and not items[0]["metadata"].get("ownerReferences") else None

    await cluster.wait_until(orphaned, timeout=15, what="orphaned rs, deployment gone")
    # The ReplicaSet keeps its pods (they still point at it).
    assert await _count(cluster, pods, "app=orph", 3)
