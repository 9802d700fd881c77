"""DELETE: graceful pod deletion, finalizers, propagation policies, preconditions, deletecollection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Rest

PODS = "/api/v1/namespaces/default/pods"
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def pod(name: str, node: str = "", labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "pause"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def configmap(name: str, finalizers: list[str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if finalizers:
        md["finalizers"] = finalizers
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"a": "1"}}


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


async def test_delete_unbound_pod_is_immediate_and_returns_object(api: Rest) -> None:
    await api.call("POST", PODS, pod("p"))
    code, body = await api.call("DELETE", f"{PODS}/p")
    assert code == 200 and body["kind"] == "Pod" and body["metadata"]["name"] == "p"
    assert (await api.call("GET", f"{PODS}/p"))[0] == 404
    code, status = await api.call("DELETE", f"{PODS}/p")
    assert code == 404 and status["reason"] == "NotFound"


async def test_delete_configmap_returns_success_status(api: Rest) -> None:
    _, created = await api.call("POST", CMS, configmap("c"))
    code, status = await api.call("DELETE", f"{CMS}/c")
    assert code == 200
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": "c", "kind": "configmaps", "uid": created["metadata"]["uid"]}


async def test_graceful_delete_of_bound_pod_then_grace_zero(api: Rest) -> None:
    _, created = await api.call("POST", PODS, pod("p", node="n1"))
    code, pending = await api.call("DELETE", f"{PODS}/p")
    assert code == 200
    md = pending["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 30
    code, still = await api.call("GET", f"{PODS}/p")
    assert code == 200 and still["metadata"]["deletionGracePeriodSeconds"] == 30
    # A second delete with a longer or equal grace changes nothing; a shorter one shortens it.
    _, again = await api.call("DELETE", f"{PODS}/p", {"gracePeriodSeconds": 60})
    assert again["metadata"]["deletionGracePeriodSeconds"] == 30
    _, shorter = await api.call("DELETE", f"{PODS}/p", params={"gracePeriodSeconds": "10"})
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 10
    # The kubelet's final delete: grace 0 with a UID precondition removes it.
    opts = {"gracePeriodSeconds": 0, "preconditions": {"uid": created["metadata"]["uid"]}}
    code, final = await api.call("DELETE", f"{PODS}/p", opts)
    assert code == 200 and final["metadata"]["name"] == "p"
    assert (await api.call("GET", f"{PODS}/p"))[0] == 404


async def test_delete_preconditions_conflict(api: Rest) -> None:
    _, created = await api.call("POST", CMS, configmap("c"))
    code, status = await api.call("DELETE", f"{CMS}/c", {"preconditions": {"uid": "wrong"}})
    assert code == 409 and status["reason"] == "Conflict"
    assert "Precondition failed: UID in precondition: wrong" in status["message"]
    code, status = await api.call("DELETE", f"{CMS}/c", {"preconditions": {"resourceVersion": "1"}})
    assert code == 409 and "ResourceVersion in precondition: 1" in status["message"]
    rv = created["metadata"]["resourceVersion"]
    code, _ = await api.call("DELETE", f"{CMS}/c", {"preconditions": {"resourceVersion": rv}})
    assert code == 200


async def test_finalizers_keep_object_until_removed(api: Rest) -> None:
    await api.call("POST", CMS, configmap("c", finalizers=["example.com/keep"]))
    code, pending = await api.call("DELETE", f"{CMS}/c")
    assert code == 200 and pending["kind"] == "ConfigMap"
    assert pending["metadata"]["deletionTimestamp"] and pending["metadata"]["deletionGracePeriodSeconds"] == 0
    code, kept = await api.call("GET", f"{CMS}/c")
    assert code == 200 and kept["metadata"]["finalizers"] == ["example.com/keep"]
    # New finalizers may not be added while deleting.
    code, status = await api.call(
        "PATCH",
        f"{CMS}/c",
        {"metadata": {"finalizers": ["example.com/keep", "x.io/new"]}},
        content_type="application/merge-patch+json",
    )
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.finalizers"
    # Removing the last finalizer removes the object.
    code, last = await api.call(
        "PATCH", f"{CMS}/c", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
    )
    assert code == 200 and last["metadata"]["name"] == "c" and not last["metadata"].get("finalizers")
    assert (await api.call("GET", f"{CMS}/c"))[0] == 404


async def test_propagation_policies_add_finalizers(api: Rest) -> None:
    await api.call("POST", DEPLOYS, deployment("orphaned"))
    code, obj = await api.call("DELETE", f"{DEPLOYS}/orphaned", {"propagationPolicy": "Orphan"})
    assert code == 200 and obj["metadata"]["finalizers"] == ["orphan"]
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["generation"] == 2  # marking for deletion bumps generation
    await api.call("POST", DEPLOYS, deployment("fg"))
    code, obj = await api.call("DELETE", f"{DEPLOYS}/fg", params={"propagationPolicy": "Foreground"})
    assert code == 200 and obj["metadata"]["finalizers"] == ["foregroundDeletion"]
    await api.call("POST", DEPLOYS, deployment("bg"))
    code, status = await api.call("DELETE", f"{DEPLOYS}/bg", {"propagationPolicy": "Background"})
    assert code == 200 and status["kind"] == "Status" and status["details"]["group"] == "apps"
    code, status = await api.call("DELETE", f"{DEPLOYS}/fg", {"propagationPolicy": "Sideways"})
    assert code == 422


async def test_deletecollection_with_selector(api: Rest) -> None:
    for i in range(4):
        await api.call("POST", CMS, configmap(f"c{i}", labels={"group": "a" if i < 3 else "b"}))
    code, deleted = await api.call("DELETE", CMS, params={"labelSelector": "group=a"})
    assert code == 200 and deleted["kind"] == "ConfigMapList"
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["c0", "c1", "c2"]
    _, left = await api.call("GET", CMS)
    assert [i["metadata"]["name"] for i in left["items"]] == ["c3"]


async def test_namespace_delete_is_two_phase(api: Rest) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}
    await api.call("POST", "/api/v1/namespaces", ns)
    code, body = await api.call("DELETE", "/api/v1/namespaces/gone")
    assert code == 200 and body["status"]["phase"] == "Terminating"
    finalize = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}, "spec": {"finalizers": []}}
    code, _ = await api.call("PUT", "/api/v1/namespaces/gone/finalize", finalize)
    assert code == 200
    assert (await api.call("GET", "/api/v1/namespaces/gone"))[0] == 404
