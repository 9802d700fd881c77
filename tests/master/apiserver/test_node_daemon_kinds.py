"""The kinds a v1.37 kubelet and kube-proxy watch besides pods, nodes and services: CSIDrivers, RuntimeClasses,
PodCertificateRequests (with their field selectors) and ServiceCIDRs (with the default `kubernetes` one)."""

from __future__ import annotations

from .conftest import Rest

PCRS = "/apis/certificates.k8s.io/v1/podcertificaterequests"
NS_PCRS = "/apis/certificates.k8s.io/v1/namespaces/default/podcertificaterequests"
CIDRS = "/apis/networking.k8s.io/v1/servicecidrs"
STRATEGIC = "application/strategic-merge-patch+json"


def _pcr(name: str, node: str, pod: str = "p", signer: str = "example.com/signer") -> dict:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"name": name},
        "spec": {"nodeName": node, "podName": pod, "signerName": signer, "serviceAccountName": "default"},
    }


async def test_discovery_lists_the_new_groups(api: Rest) -> None:
    code, groups = await api.call("GET", "/apis")
    assert code == 200
    versions = {g["name"]: [v["version"] for v in g["versions"]] for g in groups["groups"]}
    for group in ("storage.k8s.io", "node.k8s.io", "certificates.k8s.io", "networking.k8s.io"):
        assert versions[group] == ["v1"], group
    expected = {
        "storage.k8s.io/v1": {"csidrivers": False},
        "node.k8s.io/v1": {"runtimeclasses": False},
        "certificates.k8s.io/v1": {"podcertificaterequests": True, "podcertificaterequests/status": True},
        "networking.k8s.io/v1": {"servicecidrs": False, "servicecidrs/status": False},
    }
    for group_version, resources in expected.items():
        code, listing = await api.call("GET", f"/apis/{group_version}")
        assert code == 200, listing
        # networking.k8s.io also serves NetworkPolicies (tests/master/apiserver/kinds/test_load_test_kinds.py) and
        # storage.k8s.io StorageClasses (tests/master/controllers/test_persistentvolume.py), with short names.
        ours = [r for r in listing["resources"] if r["name"].split("/")[0] not in ("networkpolicies", "storageclasses")]
        assert {r["name"]: r["namespaced"] for r in ours} == resources
        for r in ours:
            assert "shortNames" not in r and "categories" not in r, r
            if "/" not in r["name"]:
                verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                assert sorted(r["verbs"]) == verbs


async def test_default_service_cidr(api: Rest) -> None:
    code, cidr = await api.call("GET", f"{CIDRS}/kubernetes")
    assert code == 200, cidr
    assert cidr["spec"] == {"cidrs": ["10.96.0.0/12"]}
    (ready,) = cidr["status"]["conditions"]
    assert ready["type"] == "Ready" and ready["status"] == "True"
    assert ready["message"] == "Kubernetes default Service CIDR is ready"
    code, listed = await api.call("GET", CIDRS)
    assert [c["metadata"]["name"] for c in listed["items"]] == ["kubernetes"]
    # status is a subresource: a main-resource write keeps it
    cidr["status"] = {}
    code, updated = await api.call("PUT", f"{CIDRS}/kubernetes", cidr)
    assert code == 200 and updated["status"]["conditions"][0]["type"] == "Ready", updated


async def test_pod_certificate_requests_select_by_node(api: Rest) -> None:
    for name, node, pod in (("a", "n1", "p1"), ("b", "n2", "p2"), ("c", "n1", "p3")):
        code, created = await api.call("POST", NS_PCRS, _pcr(name, node, pod))
        assert code == 201, created
    code, listed = await api.call("GET", PCRS, params={"fieldSelector": "spec.nodeName=n1"})
    assert code == 200 and sorted(i["metadata"]["name"] for i in listed["items"]) == ["a", "c"]
    code, listed = await api.call("GET", NS_PCRS, params={"fieldSelector": "spec.podName=p2,metadata.name=b"})
    assert code == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["b"]
    code, listed = await api.call("GET", PCRS, params={"fieldSelector": "spec.signerName=example.com/signer"})
    assert code == 200 and len(listed["items"]) == 3
    for unsupported in ("spec.serviceAccountName=default", "metadata.namespace=default"):
        code, status = await api.call("GET", PCRS, params={"fieldSelector": unsupported})
        assert code == 400, status
        assert status["message"] == f"field label not supported: {unsupported.split('=')[0]}"
    # the status subresource
    code, patched = await api.call(
        "PATCH",
        f"{NS_PCRS}/a/status",
        {"status": {"conditions": [{"type": "Issued", "status": "True"}]}},
        content_type=STRATEGIC,
    )
    assert code == 200 and patched["status"]["conditions"][0]["type"] == "Issued", patched


async def test_cluster_scoped_kinds_round_trip(api: Rest) -> None:
    driver = {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "d"}, "spec": {}}
    code, created = await api.call("POST", "/apis/storage.k8s.io/v1/csidrivers", driver)
    assert code == 201 and created["kind"] == "CSIDriver", created
    handler = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "rc"}, "handler": "h"}
    code, created = await api.call("POST", "/apis/node.k8s.io/v1/runtimeclasses", handler)
    assert code == 201, created
    code, patched = await api.call(
        "PATCH", "/apis/node.k8s.io/v1/runtimeclasses/rc", {"metadata": {"labels": {"a": "b"}}}, content_type=STRATEGIC
    )
    assert code == 200 and patched["metadata"]["labels"] == {"a": "b"} and patched["handler"] == "h", patched
