"""kubectl version, api-resources, api-versions and explain against the real master (discovery + OpenAPI v3)."""

from __future__ import annotations

import re

import orjson
import pytest

from .conftest import Kubectl, columns

pytestmark = pytest.mark.kubectl


def test_version_reports_client_and_server(kubectl_admin: Kubectl) -> None:
    out = kubectl_admin.ok("version", "-o", "json")
    doc = orjson.loads(out)
    server = doc["serverVersion"]
    assert server["gitVersion"] == "v1.36.0-kubemark"
    assert (server["major"], server["minor"]) == ("1", "36")
    assert doc["clientVersion"]["major"] == "1"
    plain = kubectl_admin.ok("version")
    assert re.search(r"^Server Version: v1\.36\.0-kubemark$", plain, re.M), plain


def test_api_resources_lists_served_kinds_with_short_names(kubectl_admin: Kubectl) -> None:
    out = kubectl_admin.ok("api-resources")
    lines = out.splitlines()
    assert columns(lines[0]) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {(cells[0], cells[-3]): cells for cells in map(columns, lines[1:])}
    assert rows[("pods", "v1")] == ["pods", "po", "v1", "true", "Pod"]
    assert rows[("nodes", "v1")] == ["nodes", "no", "v1", "false", "Node"]
    assert rows[("deployments", "apps/v1")] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows[("services", "v1")] == ["services", "svc", "v1", "true", "Service"]
    assert rows[("leases", "coordination.k8s.io/v1")][-1] == "Lease"
    names = kubectl_admin.ok("api-resources", "--api-group=apps", "-o", "name").split()
    assert "deployments.apps" in names and "replicasets.apps" in names
    cluster_scoped = kubectl_admin.ok("api-resources", "--namespaced=false", "-o", "name").split()
    assert "nodes" in cluster_scoped and "namespaces" in cluster_scoped and "pods" not in cluster_scoped


def test_api_resources_wide_shows_verbs(kubectl_admin: Kubectl) -> None:
    lines = kubectl_admin.ok("api-resources", "-o", "wide").splitlines()
    assert columns(lines[0])[:6] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS"]
    pods = next(columns(line) for line in lines if line.startswith("pods "))
    assert set(pods[5].split(",")) >= {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }


def test_api_versions(kubectl_admin: Kubectl) -> None:
    versions = kubectl_admin.ok("api-versions").split()
    assert {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1"} <= set(versions)


def test_explain_field_of_core_and_group_kinds(kubectl_admin: Kubectl) -> None:
    out = kubectl_admin.ok("explain", "pods.spec.containers.image")
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n"), out
    assert "FIELD: image <string>" in out
    assert "Container image name" in out
    out = kubectl_admin.ok("explain", "deployment.spec.replicas")
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n"), out
    assert "FIELD: replicas <integer>" in out


def test_explain_unknown_field_fails(kubectl_admin: Kubectl) -> None:
    err = kubectl_admin.fails("explain", "pods.spec.nosuchfield")
    assert 'field "nosuchfield" does not exist' in err


def test_node_daemon_kinds_are_listed_explained_and_got(kubectl_admin: Kubectl) -> None:
    """What a v1.37 kubelet and kube-proxy also watch: served in their groups, with OpenAPI schemas."""
    lines = kubectl_admin.ok("api-resources").splitlines()
    rows = {(cells[0], cells[-3]): cells for cells in map(columns, lines[1:])}
    assert rows[("csidrivers", "storage.k8s.io/v1")] == ["csidrivers", "storage.k8s.io/v1", "false", "CSIDriver"]
    assert rows[("runtimeclasses", "node.k8s.io/v1")] == ["runtimeclasses", "node.k8s.io/v1", "false", "RuntimeClass"]
    assert rows[("podcertificaterequests", "certificates.k8s.io/v1")][-2:] == ["true", "PodCertificateRequest"]
    assert rows[("servicecidrs", "networking.k8s.io/v1")][-2:] == ["false", "ServiceCIDR"]
    out = kubectl_admin.ok("explain", "podcertificaterequests.spec.nodeName")
    assert out.startswith("GROUP:      certificates.k8s.io\nKIND:       PodCertificateRequest\nVERSION:    v1\n"), out
    cidrs = kubectl_admin.ok("get", "servicecidrs", "kubernetes", "-o", "jsonpath={.spec.cidrs[0]}")
    assert cidrs == "10.96.0.0/12"
