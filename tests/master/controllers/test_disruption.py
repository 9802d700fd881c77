"""Disruption controller (PodDisruptionBudget status) and the eviction subresource honouring budgets."""

from __future__ import annotations

from typing import Any

import pytest

from kubemark.client import APIError, resource_path
from kubemark.master.controllers.disruption import DisruptionController
from kubemark.master.controllers.replicaset import ReplicaSetController

from .test_replicaset import replicaset

RS = resource_path("apps", "v1", "replicasets", "default")
PDBS = resource_path("policy", "v1", "poddisruptionbudgets", "default")


def budget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


async def _evict(cluster, name: str) -> dict[str, Any]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    # retry=False: a 429 is the answer under test, not a reason to try again after its Retry-After.
    return await cluster.client.create(resource_path("", "v1", "pods", "default", name, "eviction"), body, retry=False)


async def _status(cluster, name: str, want: dict[str, Any]) -> dict[str, Any] | None:
    pdb = await cluster.client.get(resource_path("policy", "v1", "poddisruptionbudgets", "default", name))
    status = pdb.get("status") or {}
    return status if all(status.get(k) == v for k, v in want.items()) else None


async def _three_ready_pods(cluster) -> list[dict[str, Any]]:
    await cluster.client.create(RS, replicaset("web", 3))

    async def ready() -> list[dict[str, Any]] | None:
        await cluster.ready_all(selector="app=web")
        pods = await cluster.pods(selector="app=web")
        ok = len(pods) == 3 and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
        return pods if ok else None

    return await cluster.wait_until(ready, what="3 running pods")


async def test_budget_status_and_evictions(cluster) -> None:
    await cluster.run(ReplicaSetController(cluster.client, cluster.informers))
    pods = await _three_ready_pods(cluster)
    await cluster.client.create(PDBS, budget("web", minAvailable=2))
    # No disruption controller yet: the budget is unprocessed and evictions of running pods wait (429).
    with pytest.raises(APIError) as refused:
        await _evict(cluster, pods[0]["metadata"]["name"])
    assert refused.value.status == 429
    assert refused.value.body["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web is still being processed by the server."}
    ]

    await cluster.run(DisruptionController(cluster.client, cluster.informers))
    want = {
        "observedGeneration": 1,
        "expectedPods": 3,
        "currentHealthy": 3,
        "desiredHealthy": 2,
        "disruptionsAllowed": 1,
    }
    status = await cluster.wait_until(lambda: _status(cluster, "web", want), what="budget status")
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "DisruptionAllowed",
        "True",
        "SufficientPods",
    )

    victim = pods[0]["metadata"]["name"]
    assert (await _evict(cluster, victim))["status"] == "Success"
    assert await cluster.get("", "v1", "pods", "default", victim) is None
    # The replacement is not Ready yet: 2 healthy of 2 desired, nothing more may go.
    await cluster.wait_until(
        lambda: _status(cluster, "web", {"currentHealthy": 2, "disruptionsAllowed": 0}), what="0 left"
    )
    with pytest.raises(APIError) as refused:
        await _evict(cluster, pods[1]["metadata"]["name"])
    assert refused.value.status == 429
    assert refused.value.body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert (
        refused.value.body["details"]["causes"][0]["message"]
        == "The disruption budget web needs 2 healthy pods and has 2 currently"
    )

    # An unready pod of a healthy budget may go; so may a Pending one whatever the budget says.
    pending = [p for p in await cluster.pods(selector="app=web") if (p.get("status") or {}).get("phase") != "Running"]
    assert len(pending) == 1
    assert (await _evict(cluster, pending[0]["metadata"]["name"]))["status"] == "Success"


async def test_percentages_use_the_controllers_scale(cluster) -> None:
    await cluster.run(
        ReplicaSetController(cluster.client, cluster.informers), DisruptionController(cluster.client, cluster.informers)
    )
    await _three_ready_pods(cluster)
    await cluster.client.create(PDBS, budget("half", maxUnavailable="50%"))
    # 50% of the ReplicaSet's 3, rounded up: 2 may be unavailable, 1 must stay healthy.
    want = {"expectedPods": 3, "desiredHealthy": 1, "currentHealthy": 3, "disruptionsAllowed": 2}
    await cluster.wait_until(lambda: _status(cluster, "half", want), what="percentage budget")
    await cluster.client.patch(
        resource_path("apps", "v1", "replicasets", "default", "web"), {"spec": {"replicas": 4}}, "merge"
    )
    await cluster.wait_until(
        lambda: _status(cluster, "half", {"expectedPods": 4, "desiredHealthy": 2}), what="rescaled"
    )
    await cluster.client.create(
        PDBS, {**budget("two"), "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": 1}}
    )
    running = [p for p in await cluster.pods(selector="app=web") if (p.get("status") or {}).get("phase") == "Running"]
    with pytest.raises(APIError) as refused:
        await _evict(cluster, running[0]["metadata"]["name"])
    assert refused.value.status == 500
    assert "more than one PodDisruptionBudget" in refused.value.body["message"]
