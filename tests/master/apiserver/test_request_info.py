"""RequestInfo parsing, as k8s.io/apiserver's RequestInfoFactory does it."""

from __future__ import annotations

import pytest

from kubemark.master.apiserver.request_info import UserInfo, parse_request_info


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/d/pods", {}, ("list", "", "d", "pods", "", "")),
        ("GET", "/api/v1/namespaces/d/pods", {"watch": "true"}, ("watch", "", "d", "pods", "", "")),
        ("GET", "/api/v1/pods", {}, ("list", "", "", "pods", "", "")),
        ("POST", "/api/v1/namespaces/d/pods/p/binding", {}, ("create", "", "d", "pods", "p", "binding")),
        ("PATCH", "/api/v1/nodes/n1/status", {}, ("patch", "", "", "nodes", "n1", "status")),
        (
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            {},
            ("update", "coordination.k8s.io", "kube-node-lease", "leases", "n1", ""),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/d/deployments",
            {},
            ("deletecollection", "apps", "d", "deployments", "", ""),
        ),
        (
            "DELETE",
            "/apis/apps/v1/namespaces/d/deployments/x",
            {},
            ("delete", "apps", "d", "deployments", "x", ""),
        ),
        ("GET", "/api/v1/namespaces/foo", {}, ("get", "", "foo", "namespaces", "foo", "")),
        (
            "PUT",
            "/api/v1/namespaces/foo/finalize",
            {},
            ("update", "", "foo", "namespaces", "foo", "finalize"),
        ),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
        ("GET", "/api/v1/watch/namespaces/d/pods", {}, ("watch", "", "d", "pods", "", "")),
    ],
)
def test_resource_requests(method: str, path: str, query: dict[str, str], expected: tuple[str, ...]) -> None:
    info = parse_request_info(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.group, info.namespace, info.resource, info.name, info.subresource) == expected


@pytest.mark.parametrize("path", ["/healthz", "/version", "/api", "/apis", "/apis/apps", "/apis/apps/v1", "/metrics"])
def test_non_resource_requests(path: str) -> None:
    info = parse_request_info("GET", path)
    assert not info.is_resource_request
    assert info.verb == "get"


def test_scope_and_long_running() -> None:
    assert parse_request_info("GET", "/api/v1/nodes/n1").scope == "resource"
    assert parse_request_info("GET", "/api/v1/namespaces/d/pods").scope == "namespace"
    assert parse_request_info("GET", "/api/v1/pods").scope == "cluster"
    assert parse_request_info("GET", "/api/v1/pods", {"watch": "1"}).is_long_running
    assert parse_request_info("GET", "/api/v1/namespaces/d/pods/p/log").is_long_running
    assert not parse_request_info("GET", "/api/v1/namespaces/d/pods/p").is_long_running


def test_node_identity() -> None:
    assert UserInfo("system:node:n1", ("system:nodes",)).node_name == "n1"
    assert UserInfo("system:node:n1", ()).node_name is None
    assert UserInfo("kubernetes-admin", ("system:masters",)).node_name is None


def test_watch_prefix_without_a_resource_is_not_a_resource_request() -> None:
    # Found by fuzzing: /api/v1/watch (and /apis/apps/v1/watch/) raised IndexError, a 500 from the filter chain.
    for path in ("/api/v1/watch", "/api/v1/watch/", "/apis/apps/v1/watch"):
        info = parse_request_info("GET", path, {})
        assert not info.is_resource_request
