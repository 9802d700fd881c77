"""RBAC: rule matching and escalation as pure functions, then against the control plane with clients we did not
write — the official Python client and kubectl — as the admin and as a service account with a token: the
bootstrap policy, validation, a Role and RoleBinding granting access, `kubectl auth can-i`, and the escalation
check on role and binding writes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from kubemark.master.apiserver.rbac import (
    RBACPolicy,
    bootstrap_policy,
    escalation_message,
    rule_allows,
    subject_applies,
    uncovered,
)
from kubemark.master.apiserver.request_info import RequestInfo, UserInfo, parse_request_info
from kubemark.master.control_plane import ControlPlane, ControlPlaneConfig

NS = "default"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
ROBOT = UserInfo("system:serviceaccount:default:robot", ("system:serviceaccounts", "system:authenticated"))


def _info(method: str, path: str, query: dict[str, str] | None = None) -> RequestInfo:
    return parse_request_info(method, path, query)


# -- pure -------------------------------------------------------------------------------------------------------


def test_rules_match_as_upstreams() -> None:
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    assert rule_allows(pods, _info("GET", "/api/v1/namespaces/a/pods"))
    assert not rule_allows(pods, _info("POST", "/api/v1/namespaces/a/pods"))
    assert not rule_allows(pods, _info("GET", "/api/v1/namespaces/a/pods/p/log"))  # a subresource is its own
    logs = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
    assert rule_allows(logs, _info("GET", "/api/v1/namespaces/a/pods/p/log"))
    scale = {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]}
    assert rule_allows(scale, _info("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale"))
    assert not rule_allows(scale, _info("PUT", "/apis/apps/v1/namespaces/a/deployments/d"))
    named = {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get", "watch"]}
    assert rule_allows(named, _info("GET", "/api/v1/namespaces/a/configmaps/cfg"))
    assert not rule_allows(named, _info("GET", "/api/v1/namespaces/a/configmaps/other"))
    watch_one = _info("GET", "/api/v1/namespaces/a/configmaps", {"watch": "1", "fieldSelector": "metadata.name=cfg"})
    assert rule_allows(named, watch_one)  # a watch of one object by name counts as that name
    assert not rule_allows(named, _info("GET", "/api/v1/namespaces/a/configmaps", {"watch": "1"}))
    urls = {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}
    assert rule_allows(urls, _info("GET", "/healthz")) and rule_allows(urls, _info("GET", "/apis/apps/v1"))
    assert not rule_allows(urls, _info("GET", "/metrics"))


def test_subjects_and_aggregated_roles() -> None:
    sa = {"kind": "ServiceAccount", "name": "robot"}
    assert subject_applies(sa, ROBOT, "default") and not subject_applies(sa, ROBOT, "other")
    assert subject_applies({**sa, "namespace": "default"}, ROBOT, "other")
    assert subject_applies({"kind": "Group", "name": "system:serviceaccounts"}, ROBOT, "")
    assert not subject_applies({"kind": "User", "name": "robot"}, ROBOT, "")
    policy = RBACPolicy()
    for plural, obj in bootstrap_policy():
        policy.event(plural)("ADDED", obj)
    view = policy.cluster_role_rules("view")
    assert any(rule_allows(r, _info("GET", "/api/v1/namespaces/a/pods")) for r in view)
    assert not any(rule_allows(r, _info("GET", "/api/v1/namespaces/a/secrets")) for r in view)
    edit = policy.cluster_role_rules("edit")
    assert any(rule_allows(r, _info("GET", "/api/v1/namespaces/a/secrets")) for r in edit)  # edit holds view's
    assert any(rule_allows(r, _info("GET", "/api/v1/namespaces/a/pods")) for r in edit)
    admin = policy.cluster_role_rules("admin")
    assert any(rule_allows(r, _info("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/a/roles")) for r in admin)


def test_escalation_is_measured_against_the_users_own_rules() -> None:
    owner = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    assert uncovered(owner, [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]) == []
    missing = uncovered(owner, [{"apiGroups": ["", "apps"], "resources": ["pods"], "verbs": ["get", "delete"]}])
    assert len(missing) == 3  # ("", delete), ("apps", get), ("apps", delete)
    assert escalation_message(ROBOT, missing) == (
        'user "system:serviceaccount:default:robot" (groups=["system:serviceaccounts" "system:authenticated"]) is '
        "attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "delete"]}'
    )
    assert uncovered([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], missing) == []


# -- against the control plane ----------------------------------------------------------------------------------


class Clients:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.admin = kubernetes.config.new_client_from_config(str(plane.kubeconfig_path))
        self.robot_token = ""

    def robot(self) -> kubernetes.client.ApiClient:
        assert self.plane.pki is not None
        cfg = kubernetes.client.Configuration()
        cfg.host = self.plane.url
        cfg.ssl_ca_cert = str(self.plane.pki.ca_cert_path)
        cfg.api_key = {"authorization": f"Bearer {self.robot_token}"}
        return kubernetes.client.ApiClient(cfg)

    def kubectl(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        auth = ["--token", token] if token else []
        cmd = [KUBECTL, "--kubeconfig", str(self.plane.kubeconfig_path), *auth, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Clients]:
    config = ControlPlaneConfig(data_dir=tmp_path, storage="memory", port=0, controllers=False, scheduler=False)
    async with ControlPlane(config) as plane:
        c = Clients(plane)
        core = kubernetes.client.CoreV1Api(c.admin)
        await asyncio.to_thread(core.create_namespaced_service_account, NS, {"metadata": {"name": "robot"}})
        made = await asyncio.to_thread(c.kubectl, "create", "token", "robot")
        assert made.returncode == 0, made.stderr
        c.robot_token = made.stdout.strip()
        yield c


async def _until(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Poll an API call until it succeeds: a grant reaches the authorizer through the watch cache."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(check)
        except ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {exc.status} {exc.body}") from None
        await asyncio.sleep(0.02)


def _status(call: Callable[[], Any]) -> tuple[int, str]:
    try:
        call()
    except ApiException as exc:
        return exc.status, str(json.loads(exc.body)["message"])
    return 200, ""


async def test_bootstrap_policy_and_validation(clients: Clients) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(clients.admin)
    roles = {r.metadata.name for r in (await asyncio.to_thread(rbac.list_cluster_role)).items}
    assert {"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"} <= roles
    admin_binding = await asyncio.to_thread(rbac.read_cluster_role_binding, "cluster-admin")
    assert [s.name for s in admin_binding.subjects] == ["system:masters"]
    bad_role = {"metadata": {"name": "bad"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}
    code, body = await asyncio.to_thread(_status, lambda: rbac.create_namespaced_role(NS, bad_role))
    assert code == 422 and "rules[0].verbs: Required value: verbs must contain at least one value" in body
    urls_in_role = {"metadata": {"name": "bad"}, "rules": [{"nonResourceURLs": ["/x"], "verbs": ["get"]}]}
    code, body = await asyncio.to_thread(_status, lambda: rbac.create_namespaced_role(NS, urls_in_role))
    assert code == 422 and "namespaced rules cannot apply to non-resource URLs" in body
    no_ns = {
        "metadata": {"name": "bad"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
    }
    code, body = await asyncio.to_thread(_status, lambda: rbac.create_cluster_role_binding(no_ns))
    assert code == 422 and "subjects[0].namespace: Required value" in body
    binding = {
        "metadata": {"name": "robot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}],  # apiGroup defaulted
    }
    made = await asyncio.to_thread(rbac.create_namespaced_role_binding, NS, binding)
    assert made.subjects[0].api_group == "rbac.authorization.k8s.io"
    moved = {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}}
    code, body = await asyncio.to_thread(_status, lambda: rbac.patch_namespaced_role_binding("robot-view", NS, moved))
    assert code == 422 and "cannot change roleRef" in body


async def test_a_role_and_binding_grant_what_they_say(clients: Clients) -> None:
    robot_core = kubernetes.client.CoreV1Api(clients.robot())
    code, body = await asyncio.to_thread(_status, lambda: robot_core.list_namespaced_pod(NS))
    assert (
        code == 403
        and (
            'pods is forbidden: User "system:serviceaccount:default:robot" cannot list resource "pods" in API group "" '
            'in the namespace "default"'
        )
        in body
    )
    can_i = await asyncio.to_thread(clients.kubectl, "auth", "can-i", "list", "pods", token=clients.robot_token)
    assert can_i.stdout.strip() == "no"
    # kubectl's typed clients send these as protobuf.
    for args in (
        ("create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods"),
        ("create", "rolebinding", "robot-reads", "--role=pod-reader", "--serviceaccount=default:robot"),
    ):
        done = await asyncio.to_thread(clients.kubectl, *args)
        assert done.returncode == 0, done.stderr
    pods = await _until(lambda: robot_core.list_namespaced_pod(NS), "list pods after the binding")
    assert pods.items == []
    can_i = await asyncio.to_thread(clients.kubectl, "auth", "can-i", "list", "pods", token=clients.robot_token)
    assert can_i.stdout.strip() == "yes"
    for verb_resource in (("create", "pods"), ("list", "secrets"), ("list", "pods", "-n", "kube-system")):
        can_i = await asyncio.to_thread(clients.kubectl, "auth", "can-i", *verb_resource, token=clients.robot_token)
        assert can_i.stdout.strip() == "no", verb_resource
    code, _ = await asyncio.to_thread(_status, lambda: robot_core.list_namespaced_pod("kube-system"))
    assert code == 403
    wide = await asyncio.to_thread(clients.kubectl, "get", "rolebinding", "robot-reads", "-o", "wide")
    assert "Role/pod-reader" in wide.stdout and "default/robot" in wide.stdout
    # Deleting the binding takes the access away again.
    done = await asyncio.to_thread(clients.kubectl, "delete", "rolebinding", "robot-reads")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    while (await asyncio.to_thread(_status, lambda: robot_core.list_namespaced_pod(NS)))[0] != 403:
        assert time.monotonic() < deadline, "access outlived its binding"
        await asyncio.sleep(0.02)


async def test_escalation_check_on_role_and_binding_writes(clients: Clients) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(clients.admin)
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
    ]
    await asyncio.to_thread(rbac.create_namespaced_role, NS, {"metadata": {"name": "maker"}, "rules": rules})
    await asyncio.to_thread(
        rbac.create_namespaced_role_binding,
        NS,
        {
            "metadata": {"name": "robot-maker"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "maker"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
        },
    )
    robot = kubernetes.client.RbacAuthorizationV1Api(clients.robot())
    held = {"metadata": {"name": "held"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    await _until(lambda: robot.create_namespaced_role(NS, held), "create a role of rules it holds")
    more = {"metadata": {"name": "more"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    code, body = await asyncio.to_thread(_status, lambda: robot.create_namespaced_role(NS, more))
    assert code == 403
    assert body == (
        'roles.rbac.authorization.k8s.io "more" is forbidden: user "system:serviceaccount:default:robot" '
        '(groups=["system:serviceaccounts" "system:serviceaccounts:default" "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )

    def binding(name: str, kind: str, role: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": "bob"}],
        }

    # Binding a role whose rules it holds is allowed; one it does not hold (edit reads secrets) is not.
    await asyncio.to_thread(robot.create_namespaced_role_binding, NS, binding("bob-held", "Role", "held"))
    code, body = await asyncio.to_thread(
        _status, lambda: robot.create_namespaced_role_binding(NS, binding("bob-edit", "ClusterRole", "edit"))
    )
    assert code == 403 and "is attempting to grant RBAC permissions not currently held" in body
    code, body = await asyncio.to_thread(
        _status, lambda: robot.create_namespaced_role_binding(NS, binding("bob-gone", "Role", "missing"))
    )
    assert code == 404 and body == 'roles.rbac.authorization.k8s.io "missing" not found'
    # The `bind` verb on that role lets it bind what it does not hold.
    await asyncio.to_thread(
        rbac.patch_namespaced_role,
        "maker",
        NS,
        {"rules": [*rules, {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                            "verbs": ["bind"], "resourceNames": ["edit"]}]},
    )  # fmt: skip
    await _until(
        lambda: robot.create_namespaced_role_binding(NS, binding("bob-edit", "ClusterRole", "edit")),
        "bind edit with the bind verb",
    )
