"""Who may do what: one table of requests per identity with the outcome kube-apiserver gives, checked against
the embedded master (etcd storage, loopback TLS).

Each `Row` is data: identity, verb, request, the status kube-apiserver 1.37 answers with its default bootstrap
policy (RBAC + Node authorizer with AuthorizeNodeWithSelectors + NodeRestriction), and for a 403 who denies it
and with which reason. The expected 403 message is built from those fields in upstream's words:
- authorizer: `<resource> "<name>" is forbidden: User "<user>" cannot <verb> resource "<resource>[/<sub>]" in API
  group "<group>" in the namespace "<ns>"` (or `at the cluster scope`), then `: <reason>` when the authorizer
  gave one (the Node authorizer does; RBAC does not);
- admission (NodeRestriction): `<resource> "<name>" is forbidden: <message>`.

Where kubemark deliberately answers differently the row says so: `kubemark` (a different status: the row is an
expected failure against kubemark, strict, so it shows the day it starts to match) or `kubemark_message` (same
status, other words). The rows themselves keep upstream's answer, so the same table can run against a real
kube-apiserver: give `Cluster` its URL, CA and identities with `name` other than "kubemark".

Writes of allowed rows use `?dryRun=All` where kube-apiserver supports it, so rows are independent and repeatable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import NAMESPACE, NODE_LEASES, Cluster

pytestmark = pytest.mark.etcd

NS = NAMESPACE
CORE = f"/api/v1/namespaces/{NS}"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASES}/leases"
DRY = "?dryRun=All"
PCRS = "/apis/certificates.k8s.io/v1/podcertificaterequests"
NS_PCRS = f"/apis/certificates.k8s.io/v1/namespaces/{NS}/podcertificaterequests"
CIDRS = "/apis/networking.k8s.io/v1/servicecidrs"
SA_USER = f"system:serviceaccount:{NS}:robot"
USERS = {
    "admin": "kubernetes-admin",
    "node": "system:node:n1",
    "scheduler": "system:kube-scheduler",
    "controller-manager": "system:kube-controller-manager",
    "kube-proxy": "system:kube-proxy",
    "serviceaccount": SA_USER,
    "anonymous": "system:anonymous",
}
MERGE = "application/merge-patch+json"
MAX_BODY = 3 * 1024 * 1024

# Why kubemark differs, by cause (the rows cite these).
COMPONENTS_ARE_SUPERUSERS = (
    "kubemark runs kube-scheduler and kube-controller-manager as superusers (control_plane.COMPONENT_USERS): "
    "its controllers all share the one system:kube-controller-manager identity (upstream: "
    "--use-service-account-credentials with per-controller roles); RBAC governs the other identities"
)
PROXY_IS_ITS_NODE = (
    "kubemark lets nodes list/watch EndpointSlices and ServiceCIDRs: on the embedded master the hollow kube-proxy "
    "runs as its node (launcher.Cluster.proxy_credentials is None); upstream's kube-proxy is system:kube-proxy "
    "(system:node-proxier)"
)


@dataclass(frozen=True)
class Row:
    who: str  # key of Cluster.identities
    verb: str  # the authorization verb (get, list, create, update, patch, delete)
    method: str
    path: str  # with query string
    status: int
    body: Any = None  # JSON body, or a function of the Cluster that returns it (for live values: uids)
    content_type: str = "application/json"
    raw: bytes | None = None
    # For 403: "authorizer" or "admission", and the reason (authorizer) or message (admission) upstream gives.
    denied_by: str = ""
    reason: str = ""
    # The name the 403 message carries when the URL has none (a create: the object's name, for admission).
    object_name: str = ""
    kubemark: str = ""  # why kubemark answers another status (row is xfail(strict) against kubemark)
    kubemark_message: str = ""  # kubemark's exact 403 message where only the wording differs
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.who}-{self.method}-{self.path}-{self.status}"


_RESOURCE_PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)


def forbidden_message(row: Row, user: str) -> str:
    """The message kube-apiserver's 403 for this row carries (responsewriters.Forbidden / admission.NewForbidden)."""
    path = row.path.split("?", 1)[0]
    m = _RESOURCE_PATH.match(path)
    if m is None:  # a non-resource path
        return f'forbidden: User "{user}" cannot {row.verb} path "{path}"'
    group, ns, resource, name, sub = m["group"] or "", m["ns"] or "", m["resource"], m["name"] or "", m["sub"] or ""
    if path.startswith("/api/v1/namespaces/") and m["ns"] is None and resource == "namespaces":
        ns = name  # /api/v1/namespaces/<name>: upstream records the namespace as its own name
    qualified = f"{resource}.{group}" if group else resource
    if row.denied_by == "admission":
        named = name or row.object_name
        what = f'{qualified} "{named}"' if named else qualified
        return f"{what} is forbidden: {row.reason}"
    what = f'{qualified} "{name}"' if name else qualified
    scope = f' in the namespace "{ns}"' if ns else " at the cluster scope"
    full = f"{resource}/{sub}" if sub else resource
    message = f'{what} is forbidden: User "{user}" cannot {row.verb} resource "{full}" in API group "{group}"{scope}'
    return f"{message}: {row.reason}" if row.reason else message


def _pod(name: str, node: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "pause"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _binding(pod: str, node: str = "n1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod}, "target": {"kind": "Node", "name": node}}


def _event(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "namespace": NS, "name": "p1"},
        "reason": "Tested",
        "message": "access table",
        "type": "Normal",
    }


def _lease(name: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": {}}


def _token_request(pod: str = "", uid: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"audiences": []}
    if pod:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod, **({"uid": uid} if uid else {})}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def _pcr(name: str, node: str, pod: str = "p1") -> dict[str, Any]:
    spec = {"nodeName": node, "podName": pod, "serviceAccountName": "runner", "signerName": "example.com/signer"}
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"name": name},
        "spec": spec,
    }


_STATUS_PATCH = {"status": {"conditions": [{"type": "AccessTable", "status": "True"}]}}
_NODE_PATCH = {"metadata": {"labels": {"example.com/access-table": "1"}}}
_SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new-secret"}}
_CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new-cm"}}
_NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "new-ns"}}
_SA = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "new-sa"}}
_NESTED = (
    b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":' + b"[" * 20000 + b"]" * 20000 + b"}"
)
_HUGE = json.dumps(
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"k": "x" * MAX_BODY}}
)

_STS = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {"name": "new-sts"},
    "spec": {
        "selector": {"matchLabels": {"app": "sts"}},
        "template": {"metadata": {"labels": {"app": "sts"}}, "spec": {"containers": [{"name": "c", "image": "pause"}]}},
    },
}
_PRIORITY_CLASS = {
    "apiVersion": "scheduling.k8s.io/v1",
    "kind": "PriorityClass",
    "metadata": {"name": "new-pc"},
    "value": 10,
}
_STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "new-sc"},
    "provisioner": "example.com/new",
}
_PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "new-pdb"},
    "spec": {"minAvailable": 1},
}

ROWS: list[Row] = [
    # --- no credentials, bad credentials -------------------------------------------------------------------
    Row("anonymous", "get", "GET", "/healthz", 200),
    Row("anonymous", "get", "GET", "/version", 200),
    Row("anonymous", "get", "GET", "/readyz", 200),
    Row(
        "anonymous",
        "list",
        "GET",
        f"{CORE}/pods",
        401,
        note="anonymous requests are limited to health/version paths (kube-apiserver 1.32+ AuthenticationConfiguration "
        "anonymous.conditions); with plain --anonymous-auth=true upstream answers 403 instead",
    ),
    Row("anonymous", "get", "GET", f"{CORE}/secrets/mounted", 401),
    Row("anonymous", "get", "GET", "/api", 401),
    Row("anonymous", "create", "POST", f"{CORE}/configmaps", 401, raw=_HUGE.encode()),
    Row("bad-token", "get", "GET", "/healthz", 401, note="a credential that fails is 401, even on public paths"),
    Row("bad-token", "list", "GET", f"{CORE}/pods", 401),
    # --- admin (system:masters) ----------------------------------------------------------------------------
    Row("admin", "list", "GET", "/api/v1/pods", 200),
    Row("admin", "get", "GET", f"{CORE}/secrets/unmounted", 200),
    Row("admin", "create", "POST", f"{CORE}/pods{DRY}", 201, body=_pod("admin-pod")),
    Row("admin", "delete", "DELETE", f"{CORE}/secrets/unmounted{DRY}", 200),
    Row("admin", "patch", "PATCH", f"/api/v1/nodes/n2{DRY}", 200, body=_NODE_PATCH, content_type=MERGE),
    Row("admin", "create", "POST", f"/api/v1/namespaces{DRY}", 201, body=_NAMESPACE),
    Row("admin", "update", "PUT", f"{LEASES}/n2{DRY}", 200, body=lambda c: c.ok("admin", "GET", f"{LEASES}/n2")),
    Row("admin", "list", "GET", f"{CORE}/events", 200),
    Row("admin", "get", "GET", "/metrics", 200),
    # Malformed bodies are refused before they can hurt, and the server stays healthy (last row of the group).
    Row(
        "admin",
        "create",
        "POST",
        f"{CORE}/configmaps",
        400,
        raw=b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": ',
    ),
    Row("admin", "create", "POST", f"{CORE}/configmaps", 400, raw=_NESTED, note="20,000 levels of nesting"),
    Row("admin", "create", "POST", f"{CORE}/configmaps", 413, raw=_HUGE.encode(), note="a body over 3 MiB"),
    Row("admin", "get", "GET", "/healthz", 200),
    # --- node n1: Node authorizer + NodeRestriction ---------------------------------------------------------
    Row("node", "get", "GET", f"{CORE}/pods/p1", 200),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/pods/p2",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row("node", "list", "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", 200),
    Row(
        "node",
        "list",
        "GET",
        "/api/v1/pods",
        403,
        denied_by="authorizer",
        reason="can only list/watch pods with spec.nodeName field selector",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/pods",
        403,
        body=_pod("not-mirror", "n1"),
        denied_by="admission",
        object_name="not-mirror",
        reason='pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods',
        kubemark_message='pods is forbidden: User "system:node:n1" cannot create resource "pods" in API group "" in '
        'the namespace "sec": node "n1" can only create mirror pods, which kubemark does not support',
    ),
    Row(
        "node",
        "delete",
        "DELETE",
        f"{CORE}/pods/p2",
        403,
        denied_by="admission",
        reason='node "n1" can only delete pods with spec.nodeName set to itself',
    ),
    Row("node", "patch", "PATCH", f"{CORE}/pods/p1/status{DRY}", 200, body=_STATUS_PATCH, content_type=MERGE),
    Row(
        "node",
        "patch",
        "PATCH",
        f"{CORE}/pods/p2/status",
        403,
        body=_STATUS_PATCH,
        content_type=MERGE,
        denied_by="admission",
        reason='node "n1" can only update pod status for pods with spec.nodeName set to itself',
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/pods/p4/binding",
        403,
        body=_binding("p4"),
        denied_by="authorizer",
    ),
    Row("node", "get", "GET", "/api/v1/nodes/n1", 200),
    Row("node", "list", "GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1", 200),
    Row(
        "node",
        "get",
        "GET",
        "/api/v1/nodes/n2",
        403,
        denied_by="authorizer",
        reason="node 'n1' cannot read 'n2', only its own Node object",
    ),
    Row(
        "node",
        "list",
        "GET",
        "/api/v1/nodes",
        403,
        denied_by="authorizer",
        reason="node 'n1' cannot read all nodes, only its own Node object",
    ),
    Row("node", "patch", "PATCH", f"/api/v1/nodes/n1/status{DRY}", 200, body=_STATUS_PATCH, content_type=MERGE),
    Row(
        "node",
        "patch",
        "PATCH",
        "/api/v1/nodes/n2",
        403,
        body=_NODE_PATCH,
        content_type=MERGE,
        denied_by="admission",
        reason='node "n1" is not allowed to modify node "n2"',
        kubemark_message='nodes "n2" is forbidden: User "system:node:n1" cannot patch resource "nodes" in API group '
        '"" at the cluster scope: node "n1" is not allowed to modify node "n2"',
    ),
    Row(
        "node",
        "delete",
        "DELETE",
        f"/api/v1/nodes/n1{DRY}",
        403,
        denied_by="authorizer",
        note="not even its own Node: the Node authorizer has no opinion and NodeRules() grant no delete",
    ),
    Row("node", "get", "GET", f"{CORE}/secrets/mounted", 200),
    Row("node", "list", "GET", f"{CORE}/secrets?fieldSelector=metadata.name%3Dmounted", 200),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/secrets/unmounted",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row("node", "list", "GET", f"{CORE}/secrets", 403, denied_by="authorizer", reason="No Object name found"),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/secrets",
        403,
        body=_SECRET,
        denied_by="authorizer",
        reason="can only read resources of this type",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/configmaps",
        403,
        body=_CONFIGMAP,
        denied_by="authorizer",
        reason="can only read resources of this type",
    ),
    Row(
        "node",
        "create",
        "POST",
        "/api/v1/namespaces",
        403,
        body=_NAMESPACE,
        denied_by="authorizer",
    ),
    Row("node", "get", "GET", f"{CORE}/configmaps/mounted", 200),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/configmaps/unmounted",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row("node", "get", "GET", f"{LEASES}/n1", 200),
    Row(
        "node",
        "get",
        "GET",
        f"{LEASES}/n2",
        403,
        denied_by="authorizer",
        reason="can only access node lease with the same name as the requesting node",
    ),
    Row(
        "node",
        "list",
        "GET",
        LEASES,
        403,
        denied_by="authorizer",
        reason="can only get, create, update, patch, or delete a node lease",
    ),
    Row(
        "node",
        "create",
        "POST",
        LEASES,
        403,
        body=_lease("n2"),
        denied_by="admission",
        object_name="n2",
        reason="can only access node lease with the same name as the requesting node",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
        403,
        body=_lease("n1"),
        denied_by="authorizer",
        reason='can only access leases in the "kube-node-lease" system namespace',
    ),
    Row("node", "create", "POST", f"{CORE}/events{DRY}", 201, body=_event("node-event")),
    Row(
        "node",
        "list",
        "GET",
        f"{CORE}/events",
        403,
        denied_by="authorizer",
    ),
    Row(
        "node",
        "get",
        "GET",
        f"/api/v1/namespaces/{NS}",
        403,
        denied_by="authorizer",
    ),
    Row("node", "list", "GET", "/api/v1/services", 200, note="for the pods' service env vars (NodeRules)"),
    Row(
        "node",
        "list",
        "GET",
        "/apis/discovery.k8s.io/v1/endpointslices",
        403,
        denied_by="authorizer",
        kubemark=PROXY_IS_ITS_NODE,
    ),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/serviceaccounts/runner",
        200,
        note="p1 runs as runner (KubeletServiceAccountTokenForCredentialProviders, beta and on since 1.34)",
    ),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/serviceaccounts/robot",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/serviceaccounts/robot/token",
        403,
        body=_token_request("p1"),
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
        note="robot runs no pod of n1",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/serviceaccounts/runner/token",
        403,
        body=_token_request(),
        denied_by="admission",
        reason="node requested token not bound to a pod",
        note="runner is p1's account, so the authorizer allows; NodeRestriction wants a pod binding",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/serviceaccounts/runner/token",
        201,
        body=lambda c: _token_request("p1", c.ok("admin", "GET", f"{CORE}/pods/p1")["metadata"]["uid"]),
        note="bound to the node's own pod, by uid: the kubelet's projected token",
    ),
    Row(
        "node",
        "create",
        "POST",
        f"{CORE}/serviceaccounts/runner/token",
        403,
        body=_token_request("p1"),
        denied_by="admission",
        reason="node requested token with a pod binding without a uid",
    ),
    # The rest of what a v1.37 kubelet watches: CSIDrivers and RuntimeClasses (NodeRules), its node's
    # PodCertificateRequests (the Node authorizer's authorizePodCertificateRequest).
    Row("node", "list", "GET", "/apis/storage.k8s.io/v1/csidrivers", 200),
    Row("node", "list", "GET", "/apis/node.k8s.io/v1/runtimeclasses", 200),
    Row(
        "node",
        "create",
        "POST",
        "/apis/node.k8s.io/v1/runtimeclasses",
        403,
        body={"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "rc"}, "handler": "h"},
        denied_by="authorizer",
    ),
    Row("node", "list", "GET", f"{PCRS}?fieldSelector=spec.nodeName%3Dn1", 200),
    Row("node", "list", "GET", f"{NS_PCRS}?fieldSelector=spec.nodeName%3Dn1", 200),
    Row(
        "node",
        "list",
        "GET",
        PCRS,
        403,
        denied_by="authorizer",
        reason="can only list/watch podcertificaterequests with nodeName field selector",
    ),
    Row(
        "node",
        "list",
        "GET",
        f"{PCRS}?fieldSelector=spec.nodeName%3Dn2",
        403,
        denied_by="authorizer",
        reason="can only list/watch podcertificaterequests with nodeName field selector",
    ),
    Row(
        "node",
        "get",
        "GET",
        f"{NS_PCRS}/not-mine",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row(
        "node",
        "delete",
        "DELETE",
        f"{NS_PCRS}/not-mine",
        403,
        denied_by="authorizer",
        reason="nodes may not delete podcertificaterequests",
    ),
    Row(
        "node",
        "patch",
        "PATCH",
        f"{NS_PCRS}/not-mine/status",
        403,
        body=_STATUS_PATCH,
        content_type=MERGE,
        denied_by="authorizer",
        reason="nodes may not access the status subresource of PodCertificateRequests",
    ),
    Row(
        "node",
        "create",
        "POST",
        NS_PCRS,
        403,
        body=_pcr("for-n2", "n2"),
        denied_by="admission",
        object_name="for-n2",
        reason='PodCertificateRequest.Spec.NodeName="n2", which is not the requesting node "n1"',
        note="NodeRestriction (a mutating admission plugin: before the object's validation)",
    ),
    Row("node", "list", "GET", CIDRS, 403, denied_by="authorizer", kubemark=PROXY_IS_ITS_NODE),
    # --- kube-proxy (system:kube-proxy, ClusterRoleBinding system:node-proxier) ----------------------------
    Row("kube-proxy", "list", "GET", CIDRS, 200, note="MultiCIDRServiceAllocator (GA, locked on since 1.34)"),
    Row("kube-proxy", "list", "GET", "/apis/discovery.k8s.io/v1/endpointslices", 200),
    Row("kube-proxy", "list", "GET", "/api/v1/services", 200),
    Row("kube-proxy", "get", "GET", "/api/v1/nodes/n1", 200),
    Row("kube-proxy", "create", "POST", f"{CORE}/events{DRY}", 201, body=_event("proxy-event")),
    Row("kube-proxy", "get", "GET", f"{CIDRS}/kubernetes", 403, denied_by="authorizer", note="list/watch only"),
    Row(
        "kube-proxy",
        "create",
        "POST",
        CIDRS,
        403,
        body={"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "extra"}},
        denied_by="authorizer",
    ),
    Row("kube-proxy", "list", "GET", f"{CORE}/pods", 403, denied_by="authorizer"),
    Row("kube-proxy", "get", "GET", f"{CORE}/secrets/mounted", 403, denied_by="authorizer"),
    Row(
        "kube-proxy",
        "patch",
        "PATCH",
        "/api/v1/nodes/n1",
        403,
        body=_NODE_PATCH,
        content_type=MERGE,
        denied_by="authorizer",
    ),
    # --- kube-scheduler (system:kube-scheduler ClusterRole) -------------------------------------------------
    Row("scheduler", "list", "GET", "/api/v1/pods", 200),
    Row("scheduler", "list", "GET", "/api/v1/nodes", 200),
    Row("scheduler", "create", "POST", f"{CORE}/pods/p3/binding", 201, body=_binding("p3")),
    Row("scheduler", "patch", "PATCH", f"{CORE}/pods/p1/status{DRY}", 200, body=_STATUS_PATCH, content_type=MERGE),
    Row("scheduler", "delete", "DELETE", f"{CORE}/pods/p2{DRY}", 200, note="preemption deletes pods"),
    Row("scheduler", "create", "POST", f"{CORE}/events{DRY}", 201, body=_event("scheduler-event")),
    Row(
        "scheduler",
        "create",
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases{DRY}",
        201,
        body=_lease("kube-scheduler"),
    ),
    Row(
        "scheduler",
        "get",
        "GET",
        f"{CORE}/secrets/mounted",
        403,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "scheduler",
        "list",
        "GET",
        f"{CORE}/configmaps",
        403,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "scheduler",
        "create",
        "POST",
        f"{CORE}/pods",
        403,
        body=_pod("by-scheduler"),
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "scheduler",
        "patch",
        "PATCH",
        "/api/v1/nodes/n1",
        403,
        body=_NODE_PATCH,
        content_type=MERGE,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "scheduler",
        "create",
        "POST",
        "/api/v1/namespaces",
        403,
        body=_NAMESPACE,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    # --- kube-controller-manager (system:kube-controller-manager ClusterRole) -------------------------------
    Row("controller-manager", "list", "GET", "/api/v1/pods", 200),
    Row("controller-manager", "list", "GET", f"{CORE}/secrets", 200),
    Row("controller-manager", "get", "GET", f"{CORE}/secrets/unmounted", 200),
    Row("controller-manager", "create", "POST", f"{CORE}/secrets{DRY}", 201, body=_SECRET),
    Row("controller-manager", "delete", "DELETE", f"{CORE}/secrets/unmounted{DRY}", 200),
    Row("controller-manager", "create", "POST", f"{CORE}/serviceaccounts{DRY}", 201, body=_SA),
    Row("controller-manager", "create", "POST", f"{CORE}/serviceaccounts/robot/token", 201, body=_token_request()),
    Row("controller-manager", "get", "GET", f"/api/v1/namespaces/{NS}", 200),
    Row("controller-manager", "get", "GET", f"{CORE}/configmaps/mounted", 200),
    Row("controller-manager", "create", "POST", f"{CORE}/events{DRY}", 201, body=_event("cm-event")),
    Row(
        "controller-manager",
        "create",
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases{DRY}",
        201,
        body=_lease("kube-controller-manager"),
    ),
    Row(
        "controller-manager",
        "get",
        "GET",
        f"{CORE}/pods/p1",
        403,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
        note="list/watch only",
    ),
    Row(
        "controller-manager",
        "create",
        "POST",
        f"{CORE}/pods",
        403,
        body=_pod("by-cm"),
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "controller-manager",
        "patch",
        "PATCH",
        "/api/v1/nodes/n1",
        403,
        body=_NODE_PATCH,
        content_type=MERGE,
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    Row(
        "controller-manager",
        "create",
        "POST",
        f"{CORE}/pods/p4/binding",
        403,
        body=_binding("p4"),
        denied_by="authorizer",
        kubemark=COMPONENTS_ARE_SUPERUSERS,
    ),
    # --- the kinds clusterloader2's load test creates: StatefulSets, DaemonSets, PriorityClasses, claims ------
    Row("admin", "create", "POST", f"/apis/apps/v1/namespaces/{NS}/statefulsets{DRY}", 201, body=_STS),
    Row("admin", "create", "POST", f"/apis/scheduling.k8s.io/v1/priorityclasses{DRY}", 201, body=_PRIORITY_CLASS),
    Row("admin", "list", "GET", f"/apis/apps/v1/namespaces/{NS}/daemonsets", 200),
    Row("scheduler", "list", "GET", "/api/v1/persistentvolumeclaims", 200, note="VolumeBinding reads claims"),
    Row("scheduler", "list", "GET", "/apis/storage.k8s.io/v1/storageclasses", 200, note="VolumeBinding reads classes"),
    Row("admin", "create", "POST", f"/apis/storage.k8s.io/v1/storageclasses{DRY}", 201, body=_STORAGE_CLASS),
    Row("node", "get", "GET", "/apis/storage.k8s.io/v1/storageclasses/standard", 403, denied_by="authorizer"),
    Row("node", "list", "GET", "/apis/apps/v1/statefulsets", 403, denied_by="authorizer"),
    Row(
        "node",
        "get",
        "GET",
        "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
        403,
        denied_by="authorizer",
    ),
    Row(
        "node",
        "get",
        "GET",
        f"{CORE}/persistentvolumeclaims/unrelated",
        403,
        denied_by="authorizer",
        reason="no relationship found between node 'n1' and this object",
    ),
    Row("serviceaccount", "list", "GET", f"/apis/apps/v1/namespaces/{NS}/daemonsets", 403, denied_by="authorizer"),
    Row(
        "serviceaccount",
        "create",
        "POST",
        f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets",
        403,
        body=_PDB,
        denied_by="authorizer",
    ),
    # --- a service account with no RoleBindings (robot, authenticated by its TokenRequest token) ------------
    Row("serviceaccount", "get", "GET", "/api", 200),
    Row("serviceaccount", "get", "GET", "/apis", 200),
    Row("serviceaccount", "get", "GET", "/version", 200),
    Row("serviceaccount", "get", "GET", "/healthz", 200),
    Row("serviceaccount", "create", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", 201, body={}),
    Row("serviceaccount", "list", "GET", f"{CORE}/pods", 403, denied_by="authorizer"),
    Row("serviceaccount", "get", "GET", f"{CORE}/secrets/mounted", 403, denied_by="authorizer"),
    Row("serviceaccount", "create", "POST", f"{CORE}/configmaps", 403, body=_CONFIGMAP, denied_by="authorizer"),
    Row("serviceaccount", "get", "GET", "/api/v1/nodes/n1", 403, denied_by="authorizer"),
    Row("serviceaccount", "list", "GET", LEASES, 403, denied_by="authorizer"),
    Row("serviceaccount", "list", "GET", f"{CORE}/events", 403, denied_by="authorizer"),
    Row("serviceaccount", "get", "GET", f"/api/v1/namespaces/{NS}", 403, denied_by="authorizer"),
    Row(
        "serviceaccount", "create", "POST", f"{CORE}/pods/p4/binding", 403, body=_binding("p4"), denied_by="authorizer"
    ),
    Row(
        "serviceaccount",
        "create",
        "POST",
        f"{CORE}/serviceaccounts/robot/token",
        403,
        body=_token_request(),
        denied_by="authorizer",
    ),
    Row("serviceaccount", "get", "GET", "/metrics", 403, denied_by="authorizer"),
]


def _check(cluster: Cluster, row: Row) -> None:
    body, raw = (row.body(cluster) if callable(row.body) else row.body), row.raw
    resp = cluster.call(row.who, row.method, row.path, body, raw=raw, content_type=row.content_type)
    detail = f"{row.who} {row.method} {row.path} -> {resp.status}: {resp.body[:600]!r}"
    assert resp.status == row.status, detail
    if row.status < 400:
        return
    status = resp.json()
    assert isinstance(status, dict) and status.get("kind") == "Status", detail
    assert status["code"] == row.status and status["status"] == "Failure", detail
    if row.status == 401:
        assert status["reason"] == "Unauthorized" and status["message"] == "Unauthorized", detail
    if row.status != 403:
        return
    assert status["reason"] == "Forbidden", detail
    message = status["message"]
    if cluster.name == "kubemark" and row.kubemark_message:
        assert message == row.kubemark_message, detail
        return
    assert message == forbidden_message(row, USERS[row.who]), detail


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_access(access_cluster: Cluster, row: Row, request: pytest.FixtureRequest) -> None:
    if access_cluster.name == "kubemark" and row.kubemark:
        request.applymarker(pytest.mark.xfail(reason=row.kubemark, strict=True))
    _check(access_cluster, row)


def _resource(path: str) -> str:
    m = _RESOURCE_PATH.match(path.split("?", 1)[0])
    if m is None:
        return ""
    return "bindings" if m["sub"] == "binding" else m["resource"]


def test_the_table_covers_each_identity_and_resource() -> None:
    """Reads and writes of the core resources for every component identity and the service account."""
    resources = {"pods", "nodes", "secrets", "configmaps", "leases", "events", "namespaces", "bindings"}
    reads = {"get", "list", "watch"}
    for who in ("node", "scheduler", "controller-manager", "serviceaccount"):
        rows = [r for r in ROWS if r.who == who]
        touched = {_resource(r.path) for r in rows}
        assert len(touched & resources) >= 7, (who, sorted(touched))
        assert any(r.verb in reads for r in rows) and any(r.verb not in reads for r in rows), who
        assert any(r.status == 403 for r in rows) and any(r.status < 300 for r in rows), who
    for resource in resources:
        verbs = {r.verb in reads for r in ROWS if _resource(r.path) == resource}
        assert verbs == {True, False} or resource == "bindings", (resource, verbs)
    assert {r.who for r in ROWS} >= {"admin", "anonymous", "bad-token"}
