"""Quantities come back canonical, as kube-apiserver decodes them into resource.Quantity and writes them back:
Node capacity/allocatable and Pod resources, on create, update, status update and patch (all content types)."""

from __future__ import annotations

from typing import Any

from .conftest import Rest

NODES = "/api/v1/nodes"
PODS = "/api/v1/namespaces/default/pods"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _node(name: str, capacity: dict[str, Any], allocatable: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"capacity": capacity}
    if allocatable is not None:
        status["allocatable"] = allocatable
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status}


async def test_node_capacity_and_allocatable_are_canonical(api: Rest) -> None:
    capacity = {"cpu": "1000m", "memory": "3.75Gi", "pods": 110, "ephemeral-storage": "102400Mi"}
    code, node = await api.call("POST", NODES, _node("q1", capacity))
    assert code == 201, node
    canonical = {"cpu": "1", "memory": "3840Mi", "pods": "110", "ephemeral-storage": "100Gi"}
    assert node["status"]["capacity"] == canonical
    assert node["status"]["allocatable"] == canonical  # defaulted from capacity, canonical too
    code, got = await api.call("GET", f"{NODES}/q1")
    assert got["status"]["capacity"] == canonical

    # A status PATCH of the same values in spellings of the same canonical form changes nothing: same
    # resourceVersion (as the hollow kubelet's first PATCH would be, were it still sending "3.75Gi").
    same = {"status": {"capacity": {"memory": "3.75Gi", "cpu": "1000m"}, "allocatable": {"memory": "3932160Ki"}}}
    code, patched = await api.call("PATCH", f"{NODES}/q1/status", same, content_type=STRATEGIC)
    assert code == 200, patched
    assert patched["metadata"]["resourceVersion"] == node["metadata"]["resourceVersion"]
    assert patched["status"]["capacity"]["memory"] == "3840Mi"
    # A decimal spelling of the same value is another Quantity format: stored as such, as upstream does.
    decimal = {"status": {"capacity": {"memory": "4026531840"}}}
    code, patched = await api.call("PATCH", f"{NODES}/q1/status", decimal, content_type=STRATEGIC)
    assert code == 200 and patched["status"]["capacity"]["memory"] == "4026531840", patched

    change = {"status": {"allocatable": {"memory": "0.5Gi", "cpu": "0.5"}}}
    code, patched = await api.call("PATCH", f"{NODES}/q1/status", change, content_type=MERGE)
    assert code == 200, patched
    assert patched["status"]["allocatable"]["memory"] == "512Mi" and patched["status"]["allocatable"]["cpu"] == "500m"

    ops = [{"op": "replace", "path": "/status/capacity/pods", "value": "1.1e2"}]
    code, patched = await api.call("PATCH", f"{NODES}/q1/status", ops, content_type=JSON_PATCH)
    assert code == 200 and patched["status"]["capacity"]["pods"] == "110", patched

    patched["status"]["capacity"]["cpu"] = "2000m"
    code, updated = await api.call("PUT", f"{NODES}/q1/status", patched)
    assert code == 200 and updated["status"]["capacity"]["cpu"] == "2", updated


async def test_kept_spellings_are_returned_as_sent(api: Rest) -> None:
    """Where apimachinery keeps the caller's string (it looks canonical enough), so does the embedded master."""
    code, node = await api.call("POST", NODES, _node("q2", {"cpu": "1e3", "memory": "1Ki", "pods": "05"}))
    assert code == 201, node
    assert node["status"]["capacity"] == {"cpu": "1e3", "memory": "1Ki", "pods": "05"}


async def test_pod_resources_are_canonical(api: Rest) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "q"},
        "spec": {
            "initContainers": [
                {"name": "init", "image": "pause", "resources": {"requests": {"cpu": "0.1", "memory": "1024Ki"}}}
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "pause",
                    "resources": {"requests": {"cpu": "0.5"}, "limits": {"cpu": "1000m", "memory": "1.5Gi"}},
                }
            ],
            "overhead": {"cpu": "0.25"},
        },
    }
    code, created = await api.call("POST", PODS, pod)
    assert code == 201, created
    spec = created["spec"]
    assert spec["initContainers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "1Mi"}
    app = spec["containers"][0]["resources"]
    # requests defaulted from limits (memory) carry the canonical limit
    assert app == {"requests": {"cpu": "500m", "memory": "1536Mi"}, "limits": {"cpu": "1", "memory": "1536Mi"}}
    assert spec["overhead"] == {"cpu": "250m"}

    # A PUT of the manifest as first written is the same pod: no forbidden spec change.
    created["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1.5Gi"
    created["spec"]["containers"][0]["image"] = "pause:2"
    code, updated = await api.call("PUT", f"{PODS}/q", created)
    assert code == 200, updated
    assert updated["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1536Mi"

    status = {"status": {"containerStatuses": [{"name": "app", "allocatedResources": {"cpu": "0.5"}}]}}
    code, patched = await api.call("PATCH", f"{PODS}/q/status", status, content_type=MERGE)
    assert code == 200, patched
    assert patched["status"]["containerStatuses"][0]["allocatedResources"] == {"cpu": "500m"}
