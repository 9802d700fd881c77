"""StatefulSet controller against the embedded API server: ordinals, order, claims, scale-down, rolling update."""

from __future__ import annotations

from typing import Any

from kubemark.client import resource_path
from kubemark.master.controllers.garbagecollector import GarbageCollector
from kubemark.master.controllers.statefulset import StatefulSetController, parent_and_ordinal

STS = resource_path("apps", "v1", "statefulsets", "default")
PODS = resource_path("", "v1", "pods", "default")
PVCS = resource_path("", "v1", "persistentvolumeclaims", "default")
REVISIONS = resource_path("apps", "v1", "controllerrevisions", "default")


def statefulset(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
            **spec,
        },
    }


def _sts_path(name: str, sub: str | None = None) -> str:
    return resource_path("apps", "v1", "statefulsets", "default", name, sub)


async def _names(cluster, selector: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in await cluster.pods(selector=selector))


class DeletionLog:
    """Pod names in the order the informer saw them created and deleted (deletes of unbound pods are
    immediate), with the names that were Ready when each pod appeared."""

    def __init__(self, cluster) -> None:
        self.names: list[str] = []
        self.created: list[tuple[str, list[str]]] = []
        self._pods = cluster.informers.informer("", "v1", "pods")
        self._pods.add_handler(self._added, None, self._deleted)

    def _added(self, pod: dict[str, Any]) -> None:
        ready = sorted(
            p["metadata"]["name"]
            for p in self._pods.list()
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ()
            )
        )
        self.created.append((pod["metadata"]["name"], ready))

    def _deleted(self, pod: dict[str, Any]) -> None:
        self.names.append(pod["metadata"]["name"])


async def test_parent_and_ordinal() -> None:
    assert parent_and_ordinal({"metadata": {"name": "web-12"}}) == ("web", 12)
    assert parent_and_ordinal({"metadata": {"name": "my-db-0"}}) == ("my-db", 0)
    assert parent_and_ordinal({"metadata": {"name": "web"}}) == ("", -1)


async def test_ordered_ready_creates_in_order_and_scales_down_from_the_top(cluster) -> None:
    controller = StatefulSetController(cluster.client, cluster.informers)
    deletions = DeletionLog(cluster)
    await cluster.run(controller)
    created = await cluster.client.create(STS, statefulset("web", 3))
    assert created["spec"]["podManagementPolicy"] == "OrderedReady"

    for ordinal in range(3):
        expected = [f"web-{i}" for i in range(ordinal + 1)]

        async def present(expected: list[str] = expected) -> list[str] | None:
            names = await _names(cluster, "app=web")
            return names if names == expected else None

        await cluster.wait_until(present, what=f"pods {expected}")
        # The next ordinal only comes once this one is Running and Ready.
        assert await _names(cluster, "app=web") == expected
        await cluster.ready_all(selector="app=web")

    pod = await cluster.client.get(resource_path("", "v1", "pods", "default", "web-1"))
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "web"
    (ref,) = pod["metadata"]["ownerReferences"]
    assert ref["kind"] == "StatefulSet" and ref["uid"] == created["metadata"]["uid"] and ref["controller"]

    async def status_ready() -> dict[str, Any] | None:
        got = await cluster.client.get(_sts_path("web"))
        st = got.get("status") or {}
        want = {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "currentReplicas": 3, "updatedReplicas": 3}
        return st if all(st.get(k) == v for k, v in want.items()) and st.get("observedGeneration") == 1 else None

    status = await cluster.wait_until(status_ready, what="status of 3 ready replicas")
    # Each ordinal was created only once every lower one was Ready.
    assert deletions.created == [("web-0", []), ("web-1", ["web-0"]), ("web-2", ["web-0", "web-1"])]
    assert status["currentRevision"] == status["updateRevision"] == labels["controller-revision-hash"]
    revisions = (await cluster.client.list(REVISIONS))["items"]
    assert [r["metadata"]["name"] for r in revisions] == [status["updateRevision"]]
    assert revisions[0]["revision"] == 1 and revisions[0]["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"

    await cluster.client.patch(_sts_path("web"), {"spec": {"replicas": 1}}, "merge")

    async def scaled_down() -> bool:
        return await _names(cluster, "app=web") == ["web-0"]

    await cluster.wait_until(scaled_down, what="scale down to web-0")
    assert deletions.names == ["web-2", "web-1"]

    async def status_one() -> bool:
        st = (await cluster.client.get(_sts_path("web"))).get("status") or {}
        return st.get("replicas") == 1 and st.get("readyReplicas") == 1 and st.get("observedGeneration") == 2

    await cluster.wait_until(status_one, what="status of 1 replica")


async def test_parallel_creates_all_with_claims(cluster) -> None:
    controller = StatefulSetController(cluster.client, cluster.informers)
    await cluster.run(controller)
    claim_template = {
        "metadata": {"name": "pv"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
    }
    sts = statefulset("db", 3, podManagementPolicy="Parallel", volumeClaimTemplates=[claim_template])
    created = await cluster.client.create(STS, sts)
    (template,) = created["spec"]["volumeClaimTemplates"]
    assert template["spec"]["volumeMode"] == "Filesystem" and template["status"] == {"phase": "Pending"}

    async def all_three() -> bool:
        # Parallel: no ordinal waits for another to be ready.
        return await _names(cluster, "app=db") == ["db-0", "db-1", "db-2"]

    await cluster.wait_until(all_three, what="3 pods at once")
    claims = sorted((await cluster.client.list(PVCS))["items"], key=lambda c: c["metadata"]["name"])
    assert [c["metadata"]["name"] for c in claims] == ["pv-db-0", "pv-db-1", "pv-db-2"]
    assert all(c["metadata"]["labels"] == {"app": "db"} for c in claims)
    assert claims[0]["spec"]["resources"] == {"requests": {"storage": "100Mi"}}
    pod = await cluster.client.get(resource_path("", "v1", "pods", "default", "db-2"))
    assert {"name": "pv", "persistentVolumeClaim": {"claimName": "pv-db-2"}} in pod["spec"]["volumes"]

    # Scaling down keeps the claims (whenScaled: Retain) and scaling up reuses them.
    await cluster.client.patch(_sts_path("db"), {"spec": {"replicas": 0}}, "merge")

    async def none_left() -> bool:
        return await _names(cluster, "app=db") == []

    await cluster.wait_until(none_left, what="scale to 0")
    assert len((await cluster.client.list(PVCS))["items"]) == 3


async def test_rolling_update_replaces_from_the_highest_ordinal(cluster) -> None:
    controller = StatefulSetController(cluster.client, cluster.informers)
    deletions = DeletionLog(cluster)
    await cluster.run(controller)
    await cluster.client.create(STS, statefulset("app", 3, podManagementPolicy="Parallel"))

    async def ready_three() -> bool:
        await cluster.ready_all(selector="app=app")
        st = (await cluster.client.get(_sts_path("app"))).get("status") or {}
        return st.get("readyReplicas") == 3

    await cluster.wait_until(ready_three, what="3 ready")
    before = (await cluster.client.get(_sts_path("app")))["status"]["updateRevision"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}
    await cluster.client.patch(_sts_path("app"), patch, "strategic")

    async def rolled() -> dict[str, Any] | None:
        await cluster.ready_all(selector="app=app")
        st = (await cluster.client.get(_sts_path("app"))).get("status") or {}
        done = st.get("updatedReplicas") == 3 and st.get("readyReplicas") == 3 and st.get("currentRevision") != before
        return st if done else None

    status = await cluster.wait_until(rolled, timeout=20, what="rolling update done")
    assert status["currentRevision"] == status["updateRevision"] != before
    assert deletions.names == ["app-2", "app-1", "app-0"]  # maxUnavailable 1: one at a time, top down
    for pod in await cluster.pods(selector="app=app"):
        assert pod["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.10"
        assert pod["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
    revisions = sorted((await cluster.client.list(REVISIONS))["items"], key=lambda r: r["revision"])
    assert [r["metadata"]["name"] for r in revisions] == [before, status["updateRevision"]]


async def test_scale_subresource_and_cascading_delete(cluster) -> None:
    controller = StatefulSetController(cluster.client, cluster.informers)
    gc = GarbageCollector(cluster.client, cluster.informers)
    await cluster.run(controller, gc)
    await cluster.client.create(STS, statefulset("s", 2, podManagementPolicy="Parallel"))
    scale = await cluster.client.get(_sts_path("s", "scale"))
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 2}
    assert scale["status"]["selector"] == "app=s"
    scale["spec"]["replicas"] = 4
    await cluster.client.replace(_sts_path("s", "scale"), scale)

    async def four() -> bool:
        return len(await _names(cluster, "app=s")) == 4

    await cluster.wait_until(four, what="4 pods after scale")
    await cluster.client.delete(_sts_path("s"))

    async def gone() -> bool:
        pods = await _names(cluster, "app=s")
        revisions = (await cluster.client.list(REVISIONS))["items"]
        return not pods and not revisions

    await cluster.wait_until(gone, what="pods and revisions garbage collected")


async def test_claim_retention_policy_delete(cluster) -> None:
    controller = StatefulSetController(cluster.client, cluster.informers)
    gc = GarbageCollector(cluster.client, cluster.informers)
    await cluster.run(controller, gc)
    claim_template = {
        "metadata": {"name": "pv"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    sts = statefulset(
        "gc",
        3,
        podManagementPolicy="Parallel",
        volumeClaimTemplates=[claim_template],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"},
    )
    created = await cluster.client.create(STS, sts)

    async def claims(expected: list[str]) -> list[dict[str, Any]] | bool:
        items = (await cluster.client.list(PVCS))["items"]
        return (items or True) if sorted(c["metadata"]["name"] for c in items) == expected else False

    found = await cluster.wait_until(lambda: claims(["pv-gc-0", "pv-gc-1", "pv-gc-2"]), what="3 claims")
    ref = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "gc",
        "uid": created["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert all(c["metadata"]["ownerReferences"] == [ref] for c in found)
    await cluster.client.patch(_sts_path("gc"), {"spec": {"replicas": 1}}, "merge")
    # whenScaled: Delete — the condemned pods' claims go with them.
    await cluster.wait_until(lambda: claims(["pv-gc-0"]), what="scaled-down claims deleted")
    await cluster.client.delete(_sts_path("gc"))
    # whenDeleted: Delete — the last claim goes with the set.
    await cluster.wait_until(lambda: claims([]), what="claims deleted with the set")
