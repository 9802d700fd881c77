"""Authentication (tokens, peer certificates) and authorization (masters, node rules, public paths)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kubemark.master.apiserver.auth import (
    ANONYMOUS,
    Authenticator,
    Authorizer,
    load_token_file,
    user_from_peercert,
)
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo, parse_request_info

ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
NODE1 = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
ALICE = UserInfo("alice", ("system:authenticated",))


def _info(method: str, path: str, query: dict[str, str] | None = None) -> RequestInfo:
    return parse_request_info(method, path, query)


def _fake_request(headers: dict[str, str], peercert: Any = None) -> Any:
    transport = SimpleNamespace(get_extra_info=lambda key: peercert if key == "peercert" else None)
    return SimpleNamespace(headers=headers, transport=transport)


def test_token_file_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('tok1,admin,uid1,"system:masters,ops"\n# comment\ntok2,bob,uid2\n')
    tokens = load_token_file(path)
    assert tokens["tok1"] == UserInfo("admin", ("system:masters", "ops", "system:authenticated"))
    assert tokens["tok2"] == UserInfo("bob", ("system:authenticated",))


def test_token_file_rejects_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("tok1,admin\n")
    with pytest.raises(ValueError, match=r"tokens\.csv:1"):
        load_token_file(path)


def test_bearer_token_authentication() -> None:
    authn = Authenticator({"s3cret": UserInfo("bob", ("devs",))})
    user = authn.authenticate(_fake_request({"Authorization": "Bearer s3cret"}))
    assert user == UserInfo("bob", ("devs", "system:authenticated"))
    assert authn.authenticate(_fake_request({"Authorization": "Bearer wrong"})) is None
    assert authn.authenticate(_fake_request({"Authorization": "Basic czNjcmV0"})) is None
    assert authn.has_credentials(_fake_request({"Authorization": "Bearer wrong"}))
    assert not authn.has_credentials(_fake_request({}))


def test_peer_certificate_authentication() -> None:
    peercert = {
        "subject": ((("organizationName", "system:nodes"),), (("commonName", "system:node:n1"),)),
        "issuer": ((("commonName", "kubemark-ca"),),),
    }
    authn = Authenticator({})
    user = authn.authenticate(_fake_request({}, peercert))
    assert user == NODE1
    assert user is not None and user.node_name == "n1"
    assert Authenticator({}, allow_x509=False).authenticate(_fake_request({}, peercert)) is None
    assert authn.authenticate(_fake_request({}, None)) is None
    assert user_from_peercert({}) is None


def test_token_wins_over_certificate() -> None:
    peercert = {"subject": ((("commonName", "system:node:n1"),),)}
    authn = Authenticator({"t": UserInfo("bob")})
    assert authn.authenticate(_fake_request({"Authorization": "Bearer t"}, peercert)) == UserInfo(
        "bob", ("system:authenticated",)
    )


def test_masters_may_do_anything() -> None:
    authz = Authorizer()
    assert authz.authorize(ADMIN, _info("DELETE", "/apis/apps/v1/namespaces/x/deployments/d")) is None
    assert authz.authorize(ADMIN, _info("GET", "/metrics")) is None


NODE_LIST = "/api/v1/nodes"
PODS = "/api/v1/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
CSINODES = "/apis/storage.k8s.io/v1/csinodes"


def _graph_authorizer() -> Authorizer:
    """An Authorizer whose graph has pod ns/mine on n1 (running as account `runner`) and ns/theirs on n2."""
    authz = Authorizer()
    for name, node, account in (("mine", "n1", "runner"), ("theirs", "n2", "robot")):
        authz.node_graph.add_pod(
            {
                "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
                "spec": {"nodeName": node, "serviceAccountName": account},
            }
        )
    return authz


def _sel(selector: str) -> dict[str, str]:
    return {"fieldSelector": selector}


# Kubernetes 1.34-1.36 (AuthorizeNodeWithSelectors locked on), Node,RBAC: what node n1 may do, as the Node
# authorizer decides (with NodeRules() for what it does not subdivide).
NODE_ALLOWED = [
    ("GET", "/api/v1/nodes/n1", None),
    ("GET", NODE_LIST, _sel("metadata.name=n1")),
    ("GET", NODE_LIST, {"watch": "true", **_sel("metadata.name==n1")}),
    ("GET", "/api/v1/watch/nodes", _sel("metadata.name=n1,metadata.namespace=")),
    ("POST", NODE_LIST, None),
    ("PUT", "/api/v1/nodes/n1", None),
    ("PATCH", "/api/v1/nodes/n1", None),
    ("PATCH", "/api/v1/nodes/n1/status", None),
    ("PUT", "/api/v1/nodes/n1/status", None),
    ("GET", "/api/v1/namespaces/ns/pods/mine", None),
    ("GET", PODS, _sel("spec.nodeName=n1")),
    ("GET", "/api/v1/watch/pods", _sel("spec.nodeName=n1")),
    ("GET", PODS, _sel("spec.nodeName=n1,")),  # empty terms are skipped
    ("GET", PODS, {"watch": "1", **_sel("status.phase!=Failed,spec.nodeName==n1")}),
    ("GET", "/api/v1/namespaces/ns/pods", _sel("metadata.name=mine")),  # one pod bound to it, by name
    ("DELETE", "/api/v1/namespaces/ns/pods/p", None),  # bound-to-n1: authorize_object
    ("PATCH", "/api/v1/namespaces/ns/pods/p/status", None),
    ("POST", "/api/v1/namespaces/ns/pods/p/eviction", None),
    ("GET", f"{LEASES}/n1", None),
    ("PUT", f"{LEASES}/n1", None),
    ("PATCH", f"{LEASES}/n1", None),
    ("DELETE", f"{LEASES}/n1", None),
    ("POST", LEASES, None),  # the name: authorize_object
    ("GET", f"{CSINODES}/n1", None),
    ("POST", CSINODES, None),
    ("GET", "/api/v1/services", None),
    ("GET", "/api/v1/watch/services", None),
    ("GET", "/api/v1/namespaces/ns/endpoints/e", None),
    ("POST", "/api/v1/namespaces/ns/events", None),
    ("PATCH", "/api/v1/namespaces/ns/events/e", None),
    ("GET", "/apis/storage.k8s.io/v1/csidrivers", None),
    ("GET", "/apis/node.k8s.io/v1/runtimeclasses", None),
    ("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", None),
    ("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1", None),
    ("POST", "/apis/authentication.k8s.io/v1/tokenreviews", None),
    ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", None),
    ("POST", "/apis/authorization.k8s.io/v1/namespaces/ns/localsubjectaccessreviews", None),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", None),
    ("GET", "/api/v1/namespaces/ns/serviceaccounts/runner", None),  # mine runs as runner
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/runner/token", None),
    # Not upstream (a node identity may not list them there): the hollow kube-proxy's reads as its node.
    ("GET", "/apis/discovery.k8s.io/v1/endpointslices", {"labelSelector": "!service.kubernetes.io/headless"}),
    ("GET", "/api", None),
    ("GET", "/apis/apps/v1", None),
    ("GET", "/healthz", None),
]


@pytest.mark.parametrize(("method", "path", "query"), NODE_ALLOWED)
def test_node_allowed(method: str, path: str, query: dict[str, str] | None) -> None:
    assert _graph_authorizer().authorize(NODE1, _info(method, path, query)) is None


# Denied, with the reason kube-apiserver gives ("": none, where no authorizer says why).
NODE_DENIED = [
    ("GET", "/api/v1/nodes/n2", None, "node 'n1' cannot read 'n2', only its own Node object"),
    ("GET", NODE_LIST, None, "node 'n1' cannot read all nodes, only its own Node object"),
    ("GET", NODE_LIST, _sel("metadata.name!=n1"), "node 'n1' cannot read all nodes, only its own Node object"),
    ("GET", NODE_LIST, _sel("metadata.name=n2"), "node 'n1' cannot read 'n2', only its own Node object"),
    (
        "GET",
        "/api/v1/watch/nodes",
        _sel("spec.unschedulable=false"),
        "node 'n1' cannot read all nodes, only its own Node object",
    ),
    ("DELETE", "/api/v1/nodes/n1", None, ""),  # not even its own (nor does NodeRules allow it)
    ("DELETE", "/api/v1/nodes/n2", None, ""),
    ("GET", "/api/v1/nodes/n1/status", None, ""),
    ("GET", "/api/v1/nodes/n1/proxy", None, ""),
    ("PUT", "/api/v1/nodes/n2", None, 'node "n1" is not allowed to modify node "n2"'),
    ("PATCH", "/api/v1/nodes/n2/status", None, 'node "n1" is not allowed to modify node "n2"'),
    ("GET", "/api/v1/namespaces/ns/pods/theirs", None, "no relationship found between node 'n1' and this object"),
    ("GET", "/api/v1/namespaces/ns/pods/pending", None, "no relationship found between node 'n1' and this object"),
    ("GET", "/api/v1/namespaces/other/pods/mine", None, "no relationship found between node 'n1' and this object"),
    ("GET", PODS, None, "can only list/watch pods with spec.nodeName field selector"),
    ("GET", "/api/v1/namespaces/ns/pods", None, "can only list/watch pods with spec.nodeName field selector"),
    ("GET", PODS, _sel("spec.nodeName=n2"), "can only list/watch pods with spec.nodeName field selector"),
    ("GET", PODS, _sel("spec.nodeName!=n2"), "can only list/watch pods with spec.nodeName field selector"),
    ("GET", PODS, _sel("spec.host=n1"), "can only list/watch pods with spec.nodeName field selector"),
    ("GET", "/api/v1/watch/pods", None, "can only list/watch pods with spec.nodeName field selector"),
    (
        "GET",
        "/api/v1/namespaces/ns/pods",
        _sel("metadata.name=theirs"),
        "no relationship found between node 'n1' and this object",
    ),
    ("DELETE", "/api/v1/namespaces/ns/pods", None, ""),  # deletecollection
    ("PUT", "/api/v1/namespaces/ns/pods/p", None, ""),
    ("GET", "/api/v1/namespaces/ns/pods/mine/status", None, ""),
    ("GET", "/api/v1/namespaces/ns/pods/mine/log", None, ""),
    ("POST", "/api/v1/namespaces/ns/pods/p/binding", None, ""),
    (
        "POST",
        "/api/v1/namespaces/ns/pods",
        None,
        'node "n1" can only create mirror pods, which kubemark does not support',
    ),
    ("PUT", f"{LEASES}/n2", None, "can only access node lease with the same name as the requesting node"),
    ("GET", f"{LEASES}/n2", None, "can only access node lease with the same name as the requesting node"),
    ("GET", LEASES, None, "can only get, create, update, patch, or delete a node lease"),
    ("GET", LEASES, {"watch": "true"}, "can only get, create, update, patch, or delete a node lease"),
    ("GET", LEASES, _sel("metadata.name=n1"), "can only get, create, update, patch, or delete a node lease"),
    (
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/n1",
        None,
        'can only access leases in the "kube-node-lease" system namespace',
    ),
    ("GET", CSINODES, None, "can only get, create, update, patch, or delete a CSINode"),
    ("GET", f"{CSINODES}/n2", None, "can only access CSINode with the same name as the requesting node"),
    ("GET", "/api/v1/namespaces/ns", None, ""),
    ("GET", "/api/v1/namespaces", None, ""),
    ("POST", "/api/v1/namespaces", None, ""),
    ("GET", "/api/v1/namespaces/ns/endpoints", None, ""),
    ("GET", "/api/v1/namespaces/ns/events", None, ""),
    ("POST", "/apis/events.k8s.io/v1/namespaces/ns/events", None, ""),  # NodeRules: core events only
    ("PUT", "/api/v1/namespaces/ns/services/s", None, ""),
    ("GET", "/api/v1/namespaces/ns/services/s/status", None, ""),
    ("GET", "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices/e", None, ""),
    ("POST", "/apis/apps/v1/namespaces/ns/deployments", None, ""),
    ("GET", "/apis/apps/v1/namespaces/ns/deployments", None, ""),
    ("DELETE", "/api/v1/namespaces/ns/secrets/s", None, "can only read resources of this type"),
    # Secrets and configmaps only along the node graph (tests/master/test_node_authorization.py).
    ("GET", "/api/v1/namespaces/ns/secrets/s", None, "no relationship found between node 'n1' and this object"),
    ("GET", "/api/v1/namespaces/ns/configmaps/c", None, "no relationship found between node 'n1' and this object"),
    (
        "GET",
        "/api/v1/namespaces/ns/serviceaccounts/robot",
        None,
        "no relationship found between node 'n1' and this object",
    ),
    ("GET", "/api/v1/namespaces/ns/serviceaccounts", None, "can only create tokens for individual service accounts"),
    (
        "DELETE",
        "/api/v1/namespaces/ns/serviceaccounts/runner",
        None,
        "can only create tokens for individual service accounts",
    ),
    (
        "POST",
        "/api/v1/namespaces/ns/serviceaccounts/robot/token",
        None,
        "no relationship found between node 'n1' and this object",
    ),
    ("GET", "/metrics", None, ""),
]


@pytest.mark.parametrize(("method", "path", "query", "reason"), NODE_DENIED)
def test_node_denied(method: str, path: str, query: dict[str, str] | None, reason: str) -> None:
    got = _graph_authorizer().authorize(NODE1, _info(method, path, query))
    assert got == reason


def test_node_object_checks() -> None:
    authz = Authorizer()
    status = _info("PATCH", "/api/v1/namespaces/ns/pods/p/status")
    assert authz.authorize_object(NODE1, status, {"spec": {"nodeName": "n1"}}) is None
    reason = authz.authorize_object(NODE1, status, {"spec": {"nodeName": "n2"}})
    assert reason == 'node "n1" can only update pod status for pods with spec.nodeName set to itself'
    delete = _info("DELETE", "/api/v1/namespaces/ns/pods/p")
    reason = authz.authorize_object(NODE1, delete, {"spec": {}})
    assert reason == 'node "n1" can only delete pods with spec.nodeName set to itself'
    eviction = _info("POST", "/api/v1/namespaces/ns/pods/p/eviction")
    assert authz.authorize_object(NODE1, eviction, {"spec": {"nodeName": "n1"}}) is None
    reason = authz.authorize_object(NODE1, eviction, {"spec": {"nodeName": "n2"}})
    assert reason == "node n1 can only evict pods with spec.nodeName set to itself"
    create_node = _info("POST", "/api/v1/nodes")
    assert authz.authorize_object(NODE1, create_node, {"metadata": {"name": "n1"}}) is None
    assert authz.authorize_object(NODE1, create_node, {"metadata": {"name": "n2"}}) is not None
    create_lease = _info("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
    assert authz.authorize_object(NODE1, create_lease, {"metadata": {"name": "n1"}}) is None
    assert authz.authorize_object(NODE1, create_lease, {"metadata": {"name": "n9"}}) == (
        "can only access node lease with the same name as the requesting node"
    )
    create_csinode = _info("POST", "/apis/storage.k8s.io/v1/csinodes")
    assert authz.authorize_object(NODE1, create_csinode, {"metadata": {"name": "n1"}}) is None
    assert authz.authorize_object(NODE1, create_csinode, {"metadata": {"name": "n9"}}) == (
        "can only access CSINode with the same name as the requesting node"
    )
    # Not a node identity, or a read: nothing to check.
    assert authz.authorize_object(ADMIN, delete, {"spec": {"nodeName": "n2"}}) is None
    assert authz.authorize_object(NODE1, _info("GET", "/api/v1/namespaces/ns/pods/p"), {"spec": {}}) is None


def test_plain_users_get_discovery_and_self_reviews_only() -> None:
    authz = Authorizer()
    assert authz.authorize(ALICE, _info("GET", "/apis")) is None
    assert authz.authorize(ALICE, _info("GET", "/openapi/v2")) is None
    assert authz.authorize(ALICE, _info("GET", "/version")) is None
    assert authz.authorize(ALICE, _info("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")) is None
    # Denied as RBAC denies: no reason, so the 403 message is kube-apiserver's word for word.
    assert authz.authorize(ALICE, _info("GET", "/api/v1/pods")) == ""
    assert authz.authorize(ALICE, _info("GET", "/metrics")) == ""
    assert authz.authorize(ALICE, _info("POST", "/apis")) == ""


def test_superuser_names() -> None:
    authz = Authorizer(superuser_names=("system:kube-scheduler",))
    scheduler = UserInfo("system:kube-scheduler", ("system:authenticated",))
    assert authz.authorize(scheduler, _info("POST", "/api/v1/namespaces/ns/pods/p/binding")) is None


def test_anonymous_only_public_paths() -> None:
    authz = Authorizer()
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert authz.authorize(ANONYMOUS, _info("GET", path)) is None
    assert authz.authorize(ANONYMOUS, _info("GET", "/api")) is not None
    assert authz.authorize(ANONYMOUS, _info("GET", "/api/v1/pods")) is not None
