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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/pods"),
        ("GET", "/api/v1/watch/pods"),
        ("GET", "/apis/discovery.k8s.io/v1/endpointslices"),
        ("GET", "/api/v1/services"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
        ("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"),
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"),
        ("PUT", "/api/v1/nodes/n1"),
        ("PATCH", "/api/v1/nodes/n1/status"),
        ("POST", "/api/v1/nodes"),
        ("PATCH", "/api/v1/namespaces/ns/pods/p/status"),
        ("DELETE", "/api/v1/namespaces/ns/pods/p"),
        ("POST", "/api/v1/namespaces/ns/events"),
        ("PATCH", "/api/v1/namespaces/ns/events/e"),
        ("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"),
        ("GET", "/api"),
        ("GET", "/apis/apps/v1"),
        ("GET", "/healthz"),
    ],
)
def test_node_allowed(method: str, path: str) -> None:
    assert Authorizer().authorize(NODE1, _info(method, path)) is None


@pytest.mark.parametrize(
    ("method", "path", "reason_part"),
    [
        ("PUT", "/api/v1/nodes/n2", 'modify node "n2"'),
        ("PATCH", "/api/v1/nodes/n2/status", 'modify node "n2"'),
        ("DELETE", "/api/v1/nodes/n2", 'modify node "n2"'),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2", "own lease"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/n1", "kube-node-lease"),
        ("POST", "/api/v1/namespaces/ns/pods", "mirror pods"),
        ("PUT", "/api/v1/namespaces/ns/pods/p", "cannot update pods"),
        ("POST", "/apis/apps/v1/namespaces/ns/deployments", "cannot create deployments"),
        ("GET", "/apis/apps/v1/namespaces/ns/deployments", "cannot list deployments"),
        ("DELETE", "/api/v1/namespaces/ns/secrets/s", "can only read resources of this type"),
        # Secrets and configmaps only along the node graph (tests/master/test_node_authorization.py).
        ("GET", "/api/v1/namespaces/ns/secrets/s", "no relationship found between node 'n1'"),
        ("GET", "/api/v1/namespaces/ns/configmaps/c", "no relationship found between node 'n1'"),
        ("POST", "/api/v1/namespaces", "cannot create namespaces"),
        ("GET", "/metrics", "no RBAC policy"),
    ],
)
def test_node_denied(method: str, path: str, reason_part: str) -> None:
    reason = Authorizer().authorize(NODE1, _info(method, path))
    assert reason is not None and reason_part in reason


def test_node_object_checks() -> None:
    authz = Authorizer()
    status = _info("PATCH", "/api/v1/namespaces/ns/pods/p/status")
    assert authz.authorize_object(NODE1, status, {"spec": {"nodeName": "n1"}}) is None
    reason = authz.authorize_object(NODE1, status, {"spec": {"nodeName": "n2"}})
    assert reason is not None and '"n2"' in reason
    delete = _info("DELETE", "/api/v1/namespaces/ns/pods/p")
    assert authz.authorize_object(NODE1, delete, {"spec": {}}) is not None
    create_node = _info("POST", "/api/v1/nodes")
    assert authz.authorize_object(NODE1, create_node, {"metadata": {"name": "n1"}}) is None
    assert authz.authorize_object(NODE1, create_node, {"metadata": {"name": "n2"}}) is not None
    create_lease = _info("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
    assert authz.authorize_object(NODE1, create_lease, {"metadata": {"name": "n1"}}) is None
    assert authz.authorize_object(NODE1, create_lease, {"metadata": {"name": "n9"}}) is not None
    # Not a node identity, or a read: nothing to check.
    assert authz.authorize_object(ADMIN, delete, {"spec": {"nodeName": "n2"}}) is None
    assert authz.authorize_object(NODE1, _info("GET", "/api/v1/namespaces/ns/pods/p"), {"spec": {}}) is None


def test_plain_users_get_discovery_and_self_reviews_only() -> None:
    authz = Authorizer()
    assert authz.authorize(ALICE, _info("GET", "/apis")) is None
    assert authz.authorize(ALICE, _info("GET", "/openapi/v2")) is None
    assert authz.authorize(ALICE, _info("GET", "/version")) is None
    assert authz.authorize(ALICE, _info("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")) is None
    assert authz.authorize(ALICE, _info("GET", "/api/v1/pods")) is not None
    assert authz.authorize(ALICE, _info("GET", "/metrics")) is not None
    assert authz.authorize(ALICE, _info("POST", "/apis")) is not None


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
