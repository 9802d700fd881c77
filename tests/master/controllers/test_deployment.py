"""Deployment controller (with the ReplicaSet controller) against the embedded API server."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.deployment import DeploymentController
from kubemark.master.controllers.replicaset import ReplicaSetController
from kubemark.master.controllers.rollout import POD_TEMPLATE_HASH, REVISION

DEPLOYS = resource_path("apps", "v1", "deployments", "default")


def deployment(name: str, replicas: int, image: str = "pause:3.9", strategy: dict | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image}]},
        },
    }
    if strategy:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


async def live_pods(cluster, selector: str) -> list[dict[str, Any]]:
    return [p for p in await cluster.pods(selector=selector) if not p["metadata"].get("deletionTimestamp")]


async def rollout_done(cluster, name: str, replicas: int) -> dict[str, Any] | None:
    """Play the kubelet (mark pods Ready) and report the Deployment once `kubectl rollout status` would pass."""
    await cluster.ready_all(selector=f"app={name}")
    d = await cluster.client.get(resource_path("apps", "v1", "deployments", "default", name))
    st = d.get("status") or {}
    if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
        return None
    if (st.get("updatedReplicas") or 0) != replicas or (st.get("replicas") or 0) != replicas:
        return None
    if (st.get("availableReplicas") or 0) != replicas:
        return None
    progressing = [c for c in st.get("conditions") or [] if c["type"] == "Progressing"]
    if not progressing or progressing[0]["reason"] != "NewReplicaSetAvailable":
        return None
    return d


async def test_deployment_of_50_scales_to_zero_and_back(cluster) -> None:
    await cluster.run(
        DeploymentController(cluster.client, cluster.informers),
        ReplicaSetController(cluster.client, cluster.informers),
    )
    d = await cluster.client.create(DEPLOYS, deployment("big", 50))

    pods = await cluster.wait_until(lambda: _exactly(live_pods(cluster, "app=big"), 50), timeout=30, what="50 pods")
    rss = (await cluster.client.list(resource_path("apps", "v1", "replicasets", "default")))["items"]
    assert len(rss) == 1
    (rs,) = rss
    pod_hash = rs["metadata"]["labels"][POD_TEMPLATE_HASH]
    assert rs["metadata"]["name"] == f"big-{pod_hash}"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    for pod in pods:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "ReplicaSet",
            rs["metadata"]["name"],
            rs["metadata"]["uid"],
            True,
            True,
        )
        assert pod["metadata"]["labels"][POD_TEMPLATE_HASH] == pod_hash

    done = await cluster.wait_until(lambda: rollout_done(cluster, "big", 50), timeout=30, what="rollout")
    conds = {c["type"]: c for c in done["status"]["conditions"]}
    assert conds["Available"]["status"] == "True" and conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert done["metadata"]["annotations"][REVISION] == "1"

    scale = resource_path("apps", "v1", "deployments", "default", "big")
    await cluster.client.patch(scale, {"spec": {"replicas": 0}}, "merge")
    await cluster.wait_until(lambda: _exactly(live_pods(cluster, "app=big"), 0), timeout=30, what="0 pods")
    await cluster.client.patch(scale, {"spec": {"replicas": 5}}, "merge")
    await cluster.wait_until(lambda: _exactly(live_pods(cluster, "app=big"), 5), timeout=30, what="5 pods")
    await cluster.wait_until(lambda: rollout_done(cluster, "big", 5), timeout=30, what="rollout at 5")
    rss = (await cluster.client.list(resource_path("apps", "v1", "replicasets", "default")))["items"]
    assert len(rss) == 1  # scaling never makes a new ReplicaSet


async def test_rolling_update_replaces_all_pods(cluster) -> None:
    await cluster.run(
        DeploymentController(cluster.client, cluster.informers),
        ReplicaSetController(cluster.client, cluster.informers),
    )
    await cluster.client.create(DEPLOYS, deployment("web", 8))
    await cluster.wait_until(lambda: rollout_done(cluster, "web", 8), timeout=30, what="first rollout")
    first = {p["metadata"]["name"] for p in await live_pods(cluster, "app=web")}

    path = resource_path("apps", "v1", "deployments", "default", "web")
    await cluster.client.patch(
        path, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "pause:3.10"}]}}}}, "strategic"
    )
    done = await cluster.wait_until(lambda: rollout_done(cluster, "web", 8), timeout=60, what="second rollout")
    assert done["metadata"]["annotations"][REVISION] == "2"
    pods = await live_pods(cluster, "app=web")
    assert len(pods) == 8
    assert not first & {p["metadata"]["name"] for p in pods}
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"pause:3.10"}
    rss = {
        r["metadata"]["annotations"][REVISION]: r
        for r in (await cluster.client.list(resource_path("apps", "v1", "replicasets", "default")))["items"]
    }
    assert rss["1"]["spec"]["replicas"] == 0 and rss["2"]["spec"]["replicas"] == 8


async def test_recreate_and_revision_history_limit(cluster) -> None:
    await cluster.run(
        DeploymentController(cluster.client, cluster.informers),
        ReplicaSetController(cluster.client, cluster.informers),
    )
    body = deployment("rec", 3, strategy={"type": "Recreate"})
    body["spec"]["revisionHistoryLimit"] = 1
    await cluster.client.create(DEPLOYS, body)
    await cluster.wait_until(lambda: rollout_done(cluster, "rec", 3), timeout=30, what="first rollout")
    path = resource_path("apps", "v1", "deployments", "default", "rec")
    for image in ("v2", "v3"):
        await cluster.client.patch(
            path, {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}, "strategic"
        )
        await cluster.wait_until(lambda: rollout_done(cluster, "rec", 3), timeout=30, what=f"rollout {image}")

    async def history_trimmed() -> list | None:
        items = (await cluster.client.list(resource_path("apps", "v1", "replicasets", "default")))["items"]
        return items if len(items) == 2 else None  # the current one + revisionHistoryLimit old ones

    items = await cluster.wait_until(history_trimmed, timeout=10, what="history cleanup")
    assert sorted(r["metadata"]["annotations"][REVISION] for r in items) == ["2", "3"]


async def _exactly(coro, count: int):
    items = await coro
    if len(items) != count:
        return None
    return items or True  # truthy even when zero pods are expected
