"""The kinds clusterloader2's configs create beyond Deployments and Jobs, end to end over HTTP: StatefulSets,
DaemonSets, ControllerRevisions, PriorityClasses (and Priority admission of pods), PodDisruptionBudgets,
NetworkPolicies, PersistentVolumeClaims and PersistentVolumes."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from kubemark import codec

from ..conftest import Rest

MERGE = "application/merge-patch+json"


def _template(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }


def _sts() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "labels": {"group": "load"}},
        "spec": {
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": _template({"app": "web"}),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "pv"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }


def _ds() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "labels": {"group": "load"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": _template({"app": "agent"})},
    }


def _pc() -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "high", "labels": {"group": "load"}},
        "value": 1000,
    }


def _pdb() -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "labels": {"group": "load"}},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }


def _netpol() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow", "labels": {"group": "load"}},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}],
        },
    }


def _pvc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "labels": {"group": "load"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}},
    }


def _pv() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv1", "labels": {"group": "load"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/tmp/pv1"}},
    }


def _revision() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "web-abc", "labels": {"group": "load"}},
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": 1,
    }


@dataclass(frozen=True)
class Case:
    """One kind: where it lives, a valid object, a merge patch, a mutation that makes it invalid and the field
    the 422 must name."""

    collection: str
    body: Any
    patch: dict[str, Any]
    breaks: Any  # callable(obj) -> None
    field: str


CASES = {
    "statefulsets": Case(
        "/apis/apps/v1/namespaces/default/statefulsets",
        _sts,
        {"spec": {"replicas": 3}},
        lambda o: o["spec"].update(podManagementPolicy="Sideways"),
        "spec.podManagementPolicy",
    ),
    "daemonsets": Case(
        "/apis/apps/v1/namespaces/default/daemonsets",
        _ds,
        {"spec": {"minReadySeconds": 5}},
        lambda o: o["spec"].update(
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
        ),
        "spec.updateStrategy.rollingUpdate.maxUnavailable",
    ),
    "controllerrevisions": Case(
        "/apis/apps/v1/namespaces/default/controllerrevisions",
        _revision,
        {"metadata": {"labels": {"extra": "yes"}}},
        lambda o: o.update(revision=-1),
        "revision",
    ),
    "priorityclasses": Case(
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        _pc,
        {"description": "important"},
        lambda o: o.update(value=2_000_000_000),
        "value",
    ),
    "poddisruptionbudgets": Case(
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        _pdb,
        {"spec": {"minAvailable": "50%"}},
        lambda o: o["spec"].update(maxUnavailable=1),
        "spec",
    ),
    "networkpolicies": Case(
        "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
        _netpol,
        {"spec": {"policyTypes": ["Ingress", "Egress"]}},
        lambda o: o["spec"].update(policyTypes=["Sideways"]),
        "spec.policyTypes[0]",
    ),
    "persistentvolumeclaims": Case(
        "/api/v1/namespaces/default/persistentvolumeclaims",
        _pvc,
        {"spec": {"resources": {"requests": {"storage": "200Mi"}}}},
        lambda o: o["spec"].pop("accessModes"),
        "spec.accessModes",
    ),
    "persistentvolumes": Case(
        "/api/v1/persistentvolumes",
        _pv,
        {"spec": {"persistentVolumeReclaimPolicy": "Delete"}},
        lambda o: o["spec"].pop("hostPath"),
        "spec",
    ),
}


async def _watch_events(api: Rest, collection: str, rv: str, want: int) -> list[tuple[str, str]]:
    params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5", "labelSelector": "group=load"}
    events: list[tuple[str, str]] = []
    async with api.session.get(collection, params=params) as resp:
        assert resp.status == 200
        while len(events) < want:
            line = await resp.content.readline()
            if not line:
                break
            event = codec.loads(line)
            if event["type"] != "BOOKMARK":
                events.append((event["type"], event["object"]["metadata"]["name"]))
    return events


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_crud_watch_and_validation(api: Rest, kind: str) -> None:
    case = CASES[kind]
    body = case.body()
    name = body["metadata"]["name"]
    item = f"{case.collection}/{name}"

    bad = copy.deepcopy(body)
    case.breaks(bad)
    code, status = await api.call("POST", case.collection, bad)
    assert code == 422, status
    assert status["reason"] == "Invalid" and status["details"]["kind"] == body["kind"]
    assert case.field in [c["field"] for c in status["details"]["causes"]], status

    code, listed = await api.call("GET", case.collection)
    assert code == 200 and listed["kind"] == f"{body['kind']}List"
    start_rv = listed["metadata"]["resourceVersion"]

    code, created = await api.call("POST", case.collection, body)
    assert code == 201, created
    assert created["kind"] == body["kind"] and created["metadata"]["uid"]
    code, got = await api.call("GET", item)
    assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]
    code, listed = await api.call("GET", case.collection, params={"labelSelector": "group=load"})
    assert [o["metadata"]["name"] for o in listed["items"]] == [name]

    code, patched = await api.call("PATCH", item, case.patch, content_type=MERGE)
    assert code == 200, patched
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    bad_update = copy.deepcopy(patched)
    case.breaks(bad_update)
    code, status = await api.call("PUT", item, bad_update)
    assert code == 422 and case.field in [c["field"] for c in status["details"]["causes"]], status

    code, _ = await api.call("DELETE", item)
    assert code == 200
    code, _ = await api.call("GET", item)
    assert code == 404
    events = await _watch_events(api, case.collection, start_rv, 3)
    assert events == [("ADDED", name), ("MODIFIED", name), ("DELETED", name)]


async def test_statefulset_defaults_status_and_immutable_fields(api: Rest) -> None:
    path = "/apis/apps/v1/namespaces/default/statefulsets"
    code, sts = await api.call("POST", path, _sts())
    assert code == 201, sts
    spec = sts["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert sts["status"] == {"replicas": 0, "availableReplicas": 0} and sts["metadata"]["generation"] == 1
    # A PUT of the manifest as written (clusterloader2's update) re-defaults the claim templates: no change.
    manifest = {**_sts(), "metadata": {**_sts()["metadata"], "resourceVersion": sts["metadata"]["resourceVersion"]}}
    code, same = await api.call("PUT", f"{path}/web", manifest)
    assert code == 200 and same["metadata"]["generation"] == 1, same
    sts["spec"]["serviceName"] = "other"
    code, status = await api.call("PUT", f"{path}/web", sts)
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec.serviceName", status
    code, scale = await api.call("GET", f"{path}/web/scale")
    assert code == 200 and scale["spec"] == {"replicas": 1} and scale["status"]["selector"] == "app=web"
    code, scale = await api.call("PATCH", f"{path}/web/scale", {"spec": {"replicas": 5}}, content_type=MERGE)
    assert code == 200 and scale["spec"]["replicas"] == 5
    code, got = await api.call("GET", f"{path}/web")
    assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2
    status_body = {**got, "status": {"replicas": 1, "readyReplicas": 2}}
    code, status = await api.call("PUT", f"{path}/web/status", status_body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "status.readyReplicas", status


async def test_daemonset_template_generation_follows_template_changes(api: Rest) -> None:
    path = "/apis/apps/v1/namespaces/default/daemonsets"
    code, ds = await api.call("POST", path, _ds())
    assert code == 201, ds
    annotation = "deprecated.daemonset.template.generation"
    assert ds["metadata"]["annotations"][annotation] == "1"
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    code, ds = await api.call("PATCH", f"{path}/agent", {"spec": {"minReadySeconds": 3}}, content_type=MERGE)
    assert ds["metadata"]["annotations"][annotation] == "1" and ds["metadata"]["generation"] == 2
    patch = {"spec": {"template": {"metadata": {"labels": {"app": "agent", "v": "2"}}}}}
    code, ds = await api.call("PATCH", f"{path}/agent", patch, content_type=MERGE)
    assert code == 200, ds
    assert ds["metadata"]["annotations"][annotation] == "2" and ds["metadata"]["generation"] == 3
    ds["spec"]["selector"] = {"matchLabels": {"v": "2"}}
    code, status = await api.call("PUT", f"{path}/agent", ds)
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec.selector", status


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}], **spec},
    }


async def test_priority_admission(api: Rest) -> None:
    pods = "/api/v1/namespaces/default/pods"
    classes = "/apis/scheduling.k8s.io/v1/priorityclasses"
    code, listed = await api.call("GET", classes)
    system = {c["metadata"]["name"]: c["value"] for c in listed["items"]}
    assert system == {"system-cluster-critical": 2_000_000_000, "system-node-critical": 2_000_001_000}

    code, status = await api.call("POST", pods, _pod("p1", priorityClassName="missing"))
    assert code == 403, status
    assert status["message"] == 'pods "p1" is forbidden: no PriorityClass with name missing was found'

    code, pc = await api.call("POST", classes, {**_pc(), "preemptionPolicy": "Never"})
    assert code == 201 and pc["preemptionPolicy"] == "Never"
    code, pod = await api.call("POST", pods, _pod("p2", priorityClassName="high"))
    assert code == 201, pod
    assert pod["spec"]["priority"] == 1000 and pod["spec"]["preemptionPolicy"] == "Never"
    code, status = await api.call("POST", pods, _pod("p3", priorityClassName="high", priority=5))
    assert code == 403 and "must not be provided in pod spec" in status["message"], status
    code, pod = await api.call("POST", pods, _pod("p4", priorityClassName="system-node-critical"))
    assert code == 201 and pod["spec"]["priority"] == 2_000_001_000

    # No class named: priority 0, until a global default exists; then that class applies.
    code, pod = await api.call("POST", pods, _pod("p5"))
    assert pod["spec"]["priority"] == 0 and "priorityClassName" not in pod["spec"]
    default = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "dflt"},
        "value": 7,
        "globalDefault": True,
    }
    code, _ = await api.call("POST", classes, default)
    assert code == 201
    second = {**default, "metadata": {"name": "dflt2"}}
    code, status = await api.call("POST", classes, second)
    assert code == 403 and "is already marked as default" in status["message"], status
    code, pod = await api.call("POST", pods, _pod("p6"))
    assert code == 201 and pod["spec"]["priority"] == 7 and pod["spec"]["priorityClassName"] == "dflt"

    code, status = await api.call("PATCH", f"{classes}/high", {"value": 5}, content_type=MERGE)
    assert code == 422 and status["details"]["causes"][0]["field"] == "value", status
    code, status = await api.call("POST", classes, {**_pc(), "metadata": {"name": "system-mine"}, "value": 1})
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name", status


async def test_network_policy_defaults(api: Rest) -> None:
    path = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    body = _netpol()
    body["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}]
    code, created = await api.call("POST", path, body)
    assert code == 201, created
    assert created["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert created["spec"]["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    bad = _netpol()
    bad["metadata"]["name"] = "bad"
    bad["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]
    code, status = await api.call("POST", path, bad)
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec.egress[0].to[0]", status


async def test_claim_spec_is_immutable_but_storage_can_grow(api: Rest) -> None:
    path = "/api/v1/namespaces/default/persistentvolumeclaims"
    code, pvc = await api.call("POST", path, _pvc())
    assert code == 201 and pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"] == {"phase": "Pending"}
    code, status = await api.call(
        "PATCH", f"{path}/data", {"spec": {"accessModes": ["ReadWriteMany"]}}, content_type=MERGE
    )
    assert code == 422 and status["details"]["causes"][0]["field"] == "spec", status
    code, pvc = await api.call(
        "PATCH", f"{path}/data", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}, content_type=MERGE
    )
    assert code == 200 and pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"
