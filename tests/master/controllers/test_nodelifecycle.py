"""Node lifecycle: a node whose Lease stops is marked Unknown, tainted, its pods evicted; recovery untaints."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.kube.meta import now_micro, now_rfc3339
from kubemark.master.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    NodeLifecycleController,
    NodeLifecycleOptions,
    eviction_time,
    tolerates,
)


def test_toleration_matching_and_eviction_time() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}
    assert tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": NOT_READY, "operator": "Exists"}, taint)
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert eviction_time({"spec": {}}, [taint]) == 0.0
    forever = {"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]}}
    assert eviction_time(forever, [taint]) is None
    timed = {
        "spec": {
            "tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    }
    assert eviction_time(timed, [taint]) == 1704067200.0 + 300


async def _ready_node(cluster, name: str) -> None:
    nodes = resource_path("", "v1", "nodes")
    try:
        await cluster.client.create(nodes, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    except Exception as exc:
        if getattr(exc, "status", None) != 409:
            raise
    node = await cluster.client.get(resource_path("", "v1", "nodes", None, name))
    now = now_rfc3339()
    node["status"] = {
        "conditions": [
            {"type": t, "status": s, "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now}
            for t, s in (
                ("Ready", "True"),
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
            )
        ]
    }
    await cluster.client.replace(resource_path("", "v1", "nodes", None, name, "status"), node)


async def _renew(cluster, name: str) -> None:
    path = resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", name)
    lease: dict[str, Any] = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
    }
    existing = await cluster.get("coordination.k8s.io", "v1", "leases", "kube-node-lease", name)
    if existing is None:
        await cluster.client.create(resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease"), lease)
    else:
        existing["spec"]["renewTime"] = now_micro()
        await cluster.client.replace(path, existing)


def _taints(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


async def test_dead_node_is_tainted_pods_evicted_and_recovers(cluster) -> None:
    await _ready_node(cluster, "n1")
    await _renew(cluster, "n1")
    pods = resource_path("", "v1", "pods", "default")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "victim"},
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "pause"}],
            "tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}],
        },
    }
    await cluster.client.create(pods, pod)
    forever = {**pod, "metadata": {"name": "stayer"}}
    forever["spec"] = {**pod["spec"], "tolerations": [{"operator": "Exists"}]}
    await cluster.client.create(pods, forever)
    nlc = NodeLifecycleController(
        cluster.client,
        cluster.informers,
        options=NodeLifecycleOptions(monitor_period=0.1, grace_period=0.6, startup_grace_period=0.6),
    )
    await cluster.run(nlc)

    async def tainted() -> dict | None:
        node = await cluster.client.get(resource_path("", "v1", "nodes", None, "n1"))
        return node if _taints(node) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")} else None

    node = await cluster.wait_until(tainted, what="unreachable taints")
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert all(conds[t]["status"] == "Unknown" for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"))
    assert conds["Ready"]["reason"] == "NodeStatusUnknown"
    assert conds["Ready"]["message"] == "Kubelet stopped posting node status."

    async def evicted() -> dict | None:
        got = await cluster.get("", "v1", "pods", "default", "victim")
        return got if got is None or got["metadata"].get("deletionTimestamp") else None

    await cluster.wait_until(evicted, timeout=5, what="eviction after tolerationSeconds")
    victim = await cluster.get("", "v1", "pods", "default", "victim")
    if victim is not None:
        assert any(c["type"] == "DisruptionTarget" for c in victim["status"]["conditions"])
    stayer = await cluster.get("", "v1", "pods", "default", "stayer")
    assert stayer is not None and not stayer["metadata"].get("deletionTimestamp")

    # The kubelet comes back: lease renewed and Ready=True.
    await _renew(cluster, "n1")
    await _ready_node(cluster, "n1")

    async def untainted() -> bool:
        node = await cluster.client.get(resource_path("", "v1", "nodes", None, "n1"))
        return not _taints(node)

    await cluster.wait_until(untainted, what="taints removed")
