"""ReplicaSet / ReplicationController controller against the embedded API server."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.replicaset import (
    REPLICATION_CONTROLLER,
    ReplicaSetController,
    pods_to_delete,
    slow_start_sizes,
)

RS = resource_path("apps", "v1", "replicasets", "default")


def replicaset(name: str, replicas: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }


def test_slow_start_batches_double() -> None:
    assert slow_start_sizes(0) == []
    assert slow_start_sizes(1) == [1]
    assert slow_start_sizes(10) == [1, 2, 4, 3]
    assert sum(slow_start_sizes(500)) == 500


def test_deletion_ranking_prefers_unscheduled_then_pending_then_not_ready() -> None:
    def pod(name: str, node: str = "", phase: str = "Running", ready: bool = True) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"nodeName": node},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }

    pods = [
        pod("ready", "n1"),
        pod("notready", "n2", ready=False),
        pod("pending", "n3", phase="Pending", ready=False),
        pod("unscheduled", phase="Pending", ready=False),
    ]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, 4)] == ["unscheduled", "pending", "notready", "ready"]


async def test_replicaset_creates_scales_and_reports_status(cluster) -> None:
    rsc = ReplicaSetController(cluster.client, cluster.informers)
    await cluster.run(rsc)
    rs = await cluster.client.create(RS, replicaset("web", 7))

    pods = await cluster.wait_until(lambda: _pods_if(cluster, "app=web", 7), what="7 pods")
    for pod in pods:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert pod["metadata"]["name"].startswith("web-")
    await cluster.ready_all(selector="app=web")

    async def status_ready() -> bool:
        got = await cluster.client.get(resource_path("apps", "v1", "replicasets", "default", "web"))
        st = got.get("status") or {}
        return st.get("readyReplicas") == 7 and st.get("availableReplicas") == 7 and st.get("observedGeneration") == 1

    await cluster.wait_until(status_ready, what="status ready")

    await cluster.client.patch(
        resource_path("apps", "v1", "replicasets", "default", "web"), {"spec": {"replicas": 2}}, "merge"
    )
    await cluster.wait_until(lambda: _pods_if(cluster, "app=web", 2), what="2 pods")


async def test_adopts_orphans_and_releases_relabelled_pods(cluster) -> None:
    pods_path = resource_path("", "v1", "pods", "default")
    orphan = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "orphan", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }
    await cluster.client.create(pods_path, orphan)
    rsc = ReplicaSetController(cluster.client, cluster.informers)
    await cluster.run(rsc)
    rs = await cluster.client.create(RS, replicaset("db", 2))

    async def adopted() -> bool:
        pod = await cluster.client.get(resource_path("", "v1", "pods", "default", "orphan"))
        refs = pod["metadata"].get("ownerReferences") or []
        return any(r["uid"] == rs["metadata"]["uid"] for r in refs)

    await cluster.wait_until(adopted, what="adoption")
    await cluster.wait_until(lambda: _pods_if(cluster, "app=db", 2), what="2 pods (1 adopted + 1 created)")
    await cluster.client.patch(
        resource_path("", "v1", "pods", "default", "orphan"), {"metadata": {"labels": {"app": "other"}}}, "merge"
    )

    async def released() -> bool:
        pod = await cluster.client.get(resource_path("", "v1", "pods", "default", "orphan"))
        return not pod["metadata"].get("ownerReferences")

    await cluster.wait_until(released, what="release")
    await cluster.wait_until(lambda: _pods_if(cluster, "app=db", 2), what="replacement pod")


async def test_replication_controller(cluster) -> None:
    rcc = ReplicaSetController(cluster.client, cluster.informers, kind=REPLICATION_CONTROLLER)
    await cluster.run(rcc)
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 3,
            "selector": {"app": "legacy"},
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }
    await cluster.client.create(resource_path("", "v1", "replicationcontrollers", "default"), rc)
    pods = await cluster.wait_until(lambda: _pods_if(cluster, "app=legacy", 3), what="3 pods")
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {"ReplicationController"}


async def _pods_if(cluster, selector: str, count: int) -> list[dict[str, Any]] | None:
    pods = [p for p in await cluster.pods(selector=selector) if not p["metadata"].get("deletionTimestamp")]
    return pods if len(pods) == count else None
