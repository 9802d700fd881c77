"""Resource path building and classification."""

from __future__ import annotations

import pytest

from kubemark.client.paths import describe_path, resource_path


def test_resource_path_core_and_groups() -> None:
    assert resource_path("", "v1", "pods") == "/api/v1/pods"
    assert resource_path("", "v1", "pods", "ns1") == "/api/v1/namespaces/ns1/pods"
    assert resource_path("", "v1", "pods", "ns1", "p", "status") == "/api/v1/namespaces/ns1/pods/p/status"
    assert resource_path("apps", "v1", "deployments", "d") == "/apis/apps/v1/namespaces/d/deployments"
    assert resource_path("coordination.k8s.io", "v1", "leases", "kube-node-lease", "n1") == (
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
    )
    assert resource_path("", "v1", "nodes", name="a b") == "/api/v1/nodes/a%20b"
    with pytest.raises(ValueError):
        resource_path("", "v1", "pods", subresource="status")


@pytest.mark.parametrize(
    ("path", "resource", "sub", "ns", "name", "scope"),
    [
        ("/api/v1/pods", "pods", "", "", "", "cluster"),
        ("/api/v1/namespaces/a/pods", "pods", "", "a", "", "namespace"),
        ("/api/v1/namespaces/a/pods/p/binding", "pods", "binding", "a", "p", "resource"),
        ("/api/v1/namespaces/a", "namespaces", "", "", "a", "resource"),
        ("/api/v1/namespaces", "namespaces", "", "", "", "cluster"),
        ("/api/v1/nodes/n1/status", "nodes", "status", "", "n1", "resource"),
        ("/apis/apps/v1/namespaces/x/deployments", "deployments", "", "x", "", "namespace"),
        ("/healthz", "", "", "", "", "cluster"),
    ],
)
def test_describe_path(path: str, resource: str, sub: str, ns: str, name: str, scope: str) -> None:
    info = describe_path(path)
    assert (info.resource, info.subresource, info.namespace, info.name, info.scope) == (resource, sub, ns, name, scope)
