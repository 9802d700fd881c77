"""The metrics' scope label, as kube-apiserver's CleanScope computes it."""

from __future__ import annotations

import pytest

from kubemark.kube.request_scope import request_scope


@pytest.mark.parametrize(
    ("namespace", "name", "create", "selector", "scope"),
    [
        ("ns", "p", False, "", "resource"),  # GET a named object
        ("ns", "", True, "", "resource"),  # POST to a collection
        ("", "", True, "", "resource"),  # POST a cluster-scoped object
        ("ns", "", False, "", "namespace"),  # LIST in a namespace
        ("", "", False, "", "cluster"),  # LIST across namespaces
        ("", "", False, "metadata.name=n1", "resource"),  # a kubelet's LIST/WATCH of its own Node
        ("", "", False, "metadata.name==n1", "resource"),
        ("", "", False, "metadata.name=n1,spec.unschedulable=false", "resource"),
        ("", "", False, "metadata.name!=n1", "cluster"),  # not an exact match
        ("", "", False, "spec.nodeName=n1", "cluster"),
        ("ns", "", False, "spec.nodeName=n1", "namespace"),
        ("", "", False, "metadata.name=a/b", "cluster"),  # not a valid name: upstream ignores it
    ],
)
def test_request_scope(namespace: str, name: str, create: bool, selector: str, scope: str) -> None:
    assert request_scope(namespace=namespace, name=name, create=create, field_selector=selector) == scope
